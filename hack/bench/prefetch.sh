#!/usr/bin/env bash
# hack/bench/prefetch.sh [-n ROUNDS] [BINARY [ARGS...]]
#
# The first run of a large binary after `echo 3 > /proc/sys/vm/drop_caches`,
# without and with a profile's `pool.prefetch` (crates/daemon/src/pool/prefetch.rs).
#
# The binary (default: a private copy of /usr/bin/containerd, run with
# --version, so nothing else on the node keeps its pages cached) is timed
# ROUNDS times (default 3) right after dropping the caches: first with no
# daemon, then with a zygote daemon of the script's own (`__daemon <dir>`,
# no containerd needed) whose profile `pre` recycles its one zygote every
# 2 s and prefetches the binary after births. Prefetch runs at most once a
# minute per file, so each "with" round waits for `prefetched` in the
# daemon's pools.json to grow after the drop (up to 70 s), then 2 s for the
# read-ahead I/O, then times the binary. Needs root and a writable
# /proc/sys/vm/drop_caches (it says so and stops otherwise), and the release
# shim built (`cargo build --release -p zygote-shim`).
set -euo pipefail

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
shim="${ZYGOTE_BIN_DIR:-${repo_dir}/target/release}/containerd-shim-zygote-v1"
rounds=3
if [[ ${1:-} == -n ]]; then
	rounds="${2:?-n needs a number}"
	shift 2
fi
work="$(mktemp -d /var/tmp/zt-prefetch-XXXXXX)"
daemon_pid=""
cleanup() {
	if [[ -n ${daemon_pid} ]] && kill -0 "${daemon_pid}" 2>/dev/null; then
		kill -TERM "${daemon_pid}"
		for _ in $(seq 50); do kill -0 "${daemon_pid}" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "${work}"
}
trap cleanup EXIT

if [[ $# -gt 0 ]]; then
	bin="$1"
	shift
	args=("$@")
else
	bin="${work}/bigbin"
	cp /usr/bin/containerd "${bin}"
	args=(--version)
fi
[[ ${bin} == /* ]] || { echo "prefetch.sh: ${bin}: give an absolute path" >&2; exit 2; }
[[ -x ${shim} ]] || { echo "prefetch.sh: ${shim} not built" >&2; exit 2; }

drop() {
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		echo "prefetch.sh: echo 3 > /proc/sys/vm/drop_caches refused here: nothing to measure" >&2
		exit 3
	fi
}

# Milliseconds of one run of the binary.
run_ms() {
	local t0 t1
	t0=$(date +%s%N)
	"${bin}" "${args[@]}" >/dev/null 2>&1 || true
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

prefetched() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["profiles"]["pre"].get("prefetched", 0))' \
		"${work}/d/pools.json" 2>/dev/null || echo 0
}

echo "binary: ${bin} ${args[*]} ($(stat -c %s "${bin}") bytes), ${rounds} rounds"
without=()
for _ in $(seq "${rounds}"); do
	drop
	sleep 2
	without+=("$(run_ms)")
done
echo "without prefetch, first run after drop_caches (ms): ${without[*]}"

mkdir -p "${work}/d"
printf '{"ttrpc_address":"%s"}\n' "${work}/no-containerd.sock.ttrpc" >"${work}/d/daemon.json"
cat >"${work}/zygote.toml" <<TOML
[profiles.default.pool]
min = 0
initial = 0
max = 0
[profiles.pre.pool]
min = 0
initial = 1
max = 1
max_age_secs = 2
prefetch = ["${bin}"]
[metrics]
enabled = false
TOML
ZYGOTE_CONFIG="${work}/zygote.toml" "${shim}" __daemon "${work}/d" </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do [[ -s ${work}/d/daemon.pid ]] && break; sleep 0.1; done
daemon_pid="$(cat "${work}/d/daemon.pid")"
with=()
for _ in $(seq "${rounds}"); do
	drop
	before=$(prefetched)
	for _ in $(seq 700); do
		[[ $(prefetched) -gt ${before} ]] && break
		sleep 0.1
	done
	[[ $(prefetched) -gt ${before} ]] || { echo "prefetch.sh: no prefetch within 70 s (see ${work}/d/daemon.log)" >&2; exit 1; }
	sleep 2
	with+=("$(run_ms)")
done
echo "with prefetch, first run after drop_caches (ms):    ${with[*]}"
