#!/usr/bin/env bash
# THE test command: builds zygote, starts a private containerd, imports a
# locally built busybox image and runs the whole workspace test suite (unit
# tests + integration tests comparing zygote with runc through ctr).
#
# Usage:
#   hack/test.sh                          # everything
#   hack/test.sh [CARGO_TEST_ARGS...] [-- HARNESS_ARGS...]
#       e.g. hack/test.sh -p zygote-integration-tests --test basic -- exit_codes
#       (CARGO_TEST_ARGS replace the default "--workspace")
#
# Environment:
#   ZYGOTE_TEST_RUNTIMES   runtimes the integration tests exercise: "runc,zygote"
#                          (default), "runc" or "zygote"
#   ZYGOTE_TEST_THREADS    test threads per test binary (default 2)
#   ZYGOTE_SKIP_INSTALL=1  do not run hack/install-deps.sh
#   ZYGOTE_TEST_KEEP=1     leave the private containerd running afterwards
#   ZYGOTE_CACHE_DIR       where the image is cached (default /var/tmp/zygote-cache)
#   ZYGOTE_BIN_DIR         where containerd-shim-zygote-v1 is (default target/release)
#   ZYGOTE_TEST_COLD_PASS=0  skip the second (cold-path) pass of the integration tests
#   ZYGOTE_CONTAINERD_VERSIONS  containerd versions to run everything against, in
#                          turn (default "system"; e.g. "system 2.1.9 1.7.24"):
#                          "system" is the installed containerd, others are
#                          Debian's packages fetched by hack/containerd-versions.sh
#                          (cached; the system's containerd and runc are untouched).
#                          A version written "<v>:warm" (e.g. "1.7.24:warm") gets
#                          every test but not the integration tests' cold pass.
#   CONTAINERD_BIN_DIR     containerd/ctr/containerd-shim-runc-v2 to use for one run
#                          (set per version by the loop above; see hack/containerd.sh)
#
# The integration tests run twice: on the warm path (pools filled, config
# tests/integration/config/warm.toml) and on the cold path (cold.toml, every
# pool disabled), with the same assertions. The test binaries are built once
# (cargo test --no-run); the cold pass runs with the same cargo flags, so it
# reuses that build.
#
# Exit code: the result of cargo test (non-zero if setup failed).
set -euo pipefail

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
cd "${repo_dir}"

readonly CACHE_DIR="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}"
export ZYGOTE_BIN_DIR="${ZYGOTE_BIN_DIR:-${repo_dir}/target/release}"

start_time=${SECONDS}
step() {
	echo
	echo "=== hack/test.sh: $* ($((SECONDS - start_time))s)"
}

die() {
	echo "hack/test.sh: error: $*" >&2
	exit 1
}

cargo_args=()
harness_args=()
seen_dashes=0
for arg in "$@"; do
	if [[ ${seen_dashes} -eq 0 && ${arg} == -- ]]; then
		seen_dashes=1
		continue
	fi
	if [[ ${seen_dashes} -eq 0 ]]; then
		cargo_args+=("${arg}")
	else
		harness_args+=("${arg}")
	fi
done
if [[ ${#cargo_args[@]} -eq 0 ]]; then
	cargo_args=(--workspace)
fi

[[ ${EUID} -eq 0 ]] || die "must run as root (containerd, runc, mounts, cgroups)"

if [[ ${ZYGOTE_SKIP_INSTALL:-0} != 1 ]]; then
	step "installing dependencies"
	"${hack_dir}/install-deps.sh"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

# Several containerd versions: this script once per version, each run with
# that version's binaries first on PATH (containerd, ctr, runc-v2 shim).
read -r -a containerd_versions <<<"${ZYGOTE_CONTAINERD_VERSIONS:-system}"
if [[ -z ${ZYGOTE_CONTAINERD_VERSION:-} ]] &&
	[[ ${#containerd_versions[@]} -gt 1 || ${containerd_versions[0]:-system} != system ]]; then
	overall=0
	version_lines=()
	for entry in "${containerd_versions[@]}"; do
		v="${entry%%:*}"
		cold="${ZYGOTE_TEST_COLD_PASS:-1}"
		case "${entry}" in
		"${v}") ;;
		"${v}:warm") cold=0 ;;
		*) die "ZYGOTE_CONTAINERD_VERSIONS: '${entry}' is not <version> or <version>:warm" ;;
		esac
		bin_dir="$("${hack_dir}/containerd-versions.sh" "${v}")" || die "cannot get containerd ${v}"
		step "containerd ${v} (${bin_dir})$([[ ${cold} == 1 ]] || echo ', no cold pass')"
		t0=${SECONDS}
		set +e
		ZYGOTE_CONTAINERD_VERSION="${v}" CONTAINERD_BIN_DIR="${bin_dir}" ZYGOTE_SKIP_INSTALL=1 \
			ZYGOTE_TEST_COLD_PASS="${cold}" "${hack_dir}/test.sh" "$@"
		rc=$?
		set -e
		version_lines+=("containerd ${entry}: $([[ ${rc} -eq 0 ]] && echo PASSED || echo "FAILED (exit ${rc})") in $((SECONDS - t0))s")
		[[ ${rc} -eq 0 ]] || overall=${rc}
	done
	echo
	echo "=== hack/test.sh: per containerd version"
	printf '  %s\n' "${version_lines[@]}"
	exit "${overall}"
fi
if [[ -n ${CONTAINERD_BIN_DIR:-} ]]; then
	export PATH="${CONTAINERD_BIN_DIR}:${PATH}"
fi
echo "hack/test.sh: $(containerd --version) ($(command -v containerd)), ctr $(command -v ctr), runc $(command -v runc)"

step "building (cargo build --release --workspace)"
cargo build --release --workspace

step "building the busybox test image"
"${hack_dir}/build-image.sh" "${CACHE_DIR}/image"
# shellcheck disable=SC1091
source "${CACHE_DIR}/image/image.env"
step "building the WebAssembly test image (tests/wasm/*.wat)"
"${hack_dir}/build-wasm-image.sh" "${CACHE_DIR}/wasm-image"
# shellcheck disable=SC1091
source "${CACHE_DIR}/wasm-image/image.env"

# The containerd dir must be on a real filesystem (overlayfs upper/work dirs),
# and short enough for unix socket paths (108 bytes).
mkdir -p /var/tmp
ctrd_dir="$(mktemp -d /var/tmp/zt.XXXXXX)"
# The deepest state dir zygote accepts: its daemon's socket,
# <state>/<16 hex>/daemon.sock, which containerd dials by path, at the
# 107-byte limit of a Unix socket address. With the suite's 64-character
# ids every task's own paths (monitor.sock: ~180 bytes) are far beyond it.
state_base="${ctrd_dir}/run/node/zygote-state-"
pad_len=$((107 - 29 - ${#state_base}))
export ZYGOTE_STATE_DIR="${state_base}$(head -c "${pad_len}" /dev/zero | tr '\0' d)"
# The node's compiled-module cache, private to this run (kept across the
# daemon restarts of the two passes).
export ZYGOTE_WASM_CACHE_DIR="${ctrd_dir}/wasm-cache"
# A namespace of our own: containers land in the cgroups /<namespace>/<id>,
# so concurrent runs on one machine do not see each other's cgroups.
NAMESPACE="${ZYGOTE_TEST_NAMESPACE:-zygote-test-${ctrd_dir##*.}}"
# One log per run (runs can overlap on one machine); last-test.log points at
# the newest.
test_log="${CACHE_DIR}/test-${ctrd_dir##*.}.log"
ln -sfn "${test_log##*/}" "${CACHE_DIR}/last-test.log"
# Keep the five newest.
find "${CACHE_DIR}" -maxdepth 1 -name 'test-*.log' -printf '%T@ %p\n' | sort -rn | tail -n +6 | cut -d' ' -f2- |
	xargs -r rm -f --

result=1
summary_printed=0
print_logs() {
	echo "--- last 80 lines of ${ctrd_dir}/containerd.log ---"
	tail -n 80 "${ctrd_dir}/containerd.log" 2>/dev/null || true
	local f
	shopt -s nullglob
	for f in "${ZYGOTE_STATE_DIR}"/*/daemon.log; do
		echo "--- last 80 lines of ${f} ---"
		tail -n 80 "${f}" || true
	done
	shopt -u nullglob
}
# On failure the whole logs (containerd, every zygote daemon, the test log)
# are copied to ${CACHE_DIR}/failed-<stamp>/ before the private containerd
# is removed; the three newest such copies are kept.
save_logs() {
	local dest f
	dest="${CACHE_DIR}/failed-$(date -u +%Y%m%dT%H%M%S)-${ctrd_dir##*.}"
	mkdir -p "${dest}"
	cp -f "${ctrd_dir}/containerd.log" "${dest}/" 2>/dev/null || true
	cp -f "${test_log}" "${dest}/test.log" 2>/dev/null || true
	shopt -s nullglob
	for f in "${ZYGOTE_STATE_DIR}"/*/daemon.log*; do
		cp -f "${f}" "${dest}/$(basename "$(dirname "${f}")")-${f##*/}"
	done
	shopt -u nullglob
	echo "hack/test.sh: logs of this failed run kept in ${dest}" >&2
	find "${CACHE_DIR}" -maxdepth 1 -name 'failed-*' -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2- |
		xargs -r rm -rf --
}
stopped=0
stop_containerd() {
	[[ ${stopped} -eq 0 ]] || return 0
	stopped=1
	if [[ ${ZYGOTE_TEST_KEEP:-0} == 1 ]]; then
		echo "hack/test.sh: ZYGOTE_TEST_KEEP=1: containerd left running in ${ctrd_dir}" >&2
		echo "hack/test.sh: stop it with: hack/containerd.sh stop ${ctrd_dir}" >&2
	else
		"${hack_dir}/containerd.sh" stop "${ctrd_dir}" || echo "hack/test.sh: warning: cleanup of ${ctrd_dir} failed" >&2
	fi
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ ${summary_printed} -eq 0 ]]; then
		result=${rc}
		[[ ${result} -ne 0 ]] || result=1
		echo "hack/test.sh: setup failed or interrupted (exit ${rc})" >&2
		print_logs >&2
		save_logs
	fi
	stop_containerd
	exit "${result}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The zygote daemon reads its profiles from here (containerd passes its
# environment to the shim, and the shim to the daemon).
export ZYGOTE_CONFIG="${repo_dir}/tests/integration/config/warm.toml"
step "starting a private containerd in ${ctrd_dir}"
"${hack_dir}/containerd.sh" start "${ctrd_dir}"

step "importing ${IMAGE_REF} into namespace ${NAMESPACE}"
ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" images import \
	--base-name "${IMAGE_BASE_NAME}" "${IMAGE_TAR}"
ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" images ls -q | grep -qxF "${IMAGE_REF}" ||
	die "image ${IMAGE_REF} not found after import"
ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" images import \
	--base-name "${WASM_IMAGE_BASE_NAME}" "${WASM_IMAGE_TAR}"
ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" images ls -q | grep -qxF "${WASM_IMAGE_REF}" ||
	die "image ${WASM_IMAGE_REF} not found after import"

export ZYGOTE_TEST_CONTAINERD_DIR="${ctrd_dir}"
export ZYGOTE_TEST_ADDRESS="${ctrd_dir}/containerd.sock"
export ZYGOTE_TEST_IMAGE="${IMAGE_REF}"
# The CRI tests (tests/cri) import the image into their own containerd.
export ZYGOTE_TEST_IMAGE_TAR="${IMAGE_TAR}"
export ZYGOTE_TEST_IMAGE_BASE_NAME="${IMAGE_BASE_NAME}"
export ZYGOTE_TEST_ROOTFS="${IMAGE_ROOTFS}"
export ZYGOTE_TEST_WASM_IMAGE="${WASM_IMAGE_REF}"
export ZYGOTE_TEST_WASM_MODULES="${WASM_MODULES}"
export ZYGOTE_TEST_NAMESPACE="${NAMESPACE}"
export ZYGOTE_HACK_DIR="${hack_dir}"
export ZYGOTE_TEST_RUNTIMES="${ZYGOTE_TEST_RUNTIMES:-runc,zygote}"

# Pass 1, warm path: the workspace under tests/integration/config/warm.toml
# (pools filled). Pass 2, cold path: the integration tests again under
# cold.toml (every pool disabled), same assertions. The zygote daemon is
# stopped between passes so it reloads its configuration.
: >"${test_log}"
result=0
run_pass() {
	local path=$1
	shift
	step "running tests on the ${path} path (runtimes: ${ZYGOTE_TEST_RUNTIMES}, config ${ZYGOTE_CONFIG})"
	set +e
	ZYGOTE_TEST_PATH="${path}" cargo test --release --no-fail-fast "$@" -- \
		--test-threads="${ZYGOTE_TEST_THREADS:-2}" "${harness_args[@]}" 2>&1 | tee -a "${test_log}"
	local rc=${PIPESTATUS[0]}
	set -e
	[[ ${rc} -eq 0 ]] || result=${rc}
}
stop_zygote_daemon() {
	local f pid
	shopt -s nullglob
	for f in "${ZYGOTE_STATE_DIR}"/*/daemon.pid; do
		pid=$(cat "${f}")
		kill -TERM "${pid}" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
	done
	shopt -u nullglob
}
# Tests that need filled pools (they call assert_warm_path): not run on the
# cold pass, where every pool is disabled.
WARM_ONLY_TESTS=(
	claims_drain_and_refill_the_pool
	killed_zygote_is_replaced_and_never_handed_out
	daemon_stop_with_full_pools_leaves_no_zygote
	failed_warm_create_leaves_no_pool_cgroup
	warm_init_is_placed_without_a_migration
	# Its own containerd and config: once is enough.
	refills_stop_under_cpu_pressure_and_resume_after
	refills_stop_under_memory_pressure_and_resume_after
	a_stopped_zygote_is_replaced_counted_and_never_claimed
	a_security_change_retires_idle_zygotes_as_stale
	spread_on_this_machine_and_tasks_see_every_cpu
	two_fixture_nodes_narrow_zygotes_and_claims_widen_them
)
integration_targets=()
for f in "${repo_dir}"/tests/integration/tests/*.rs; do
	f=${f##*/}
	integration_targets+=(--test "${f%.rs}")
done
# One build for both passes: the cold pass runs with the same cargo flags
# (only target filters added), so it finds everything built.
step "building the tests (cargo test --release --no-run ${cargo_args[*]})"
cargo test --release --no-run "${cargo_args[@]}"
cold_skipped=0
run_pass warm "${cargo_args[@]}"
if [[ ${ZYGOTE_TEST_COLD_PASS:-1} == 1 ]] && [[ " ${cargo_args[*]} " == *" --workspace "* || " ${cargo_args[*]} " == *"zygote-integration-tests"* ]]; then
	stop_zygote_daemon
	export ZYGOTE_CONFIG="${repo_dir}/tests/integration/config/cold.toml"
	"${hack_dir}/containerd.sh" restart "${ctrd_dir}"
	# Tests of filled pools assert the warm path (assert_warm_path); on the
	# cold pass they are skipped by name and counted as skipped below.
	# (Counted only in a run without a name filter, where they would have run.)
	if [[ ${#harness_args[@]} -eq 0 ]]; then cold_skipped=${#WARM_ONLY_TESTS[@]}; fi
	for t in "${WARM_ONLY_TESTS[@]}"; do harness_args+=(--skip "${t}"); done
	if [[ " ${cargo_args[*]} " == *" --workspace "* ]]; then
		# The same cargo flags as the warm pass (so cargo reuses its build:
		# `-p zygote-integration-tests` would resolve features for that
		# package alone and recompile), narrowed to the integration tests'
		# targets (tests/integration/tests/*.rs).
		run_pass cold "${cargo_args[@]}" "${integration_targets[@]}"
	else
		run_pass cold "${cargo_args[@]}"
	fi
fi

# Totals over all test binaries ("test result: ok. 6 passed; 0 failed; ...").
read -r total_passed total_failed total_ignored < <(
	sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' "${test_log}" |
		awk '{ p += $1; f += $2; i += $3 } END { print p + 0, f + 0, i + 0 }'
)
# Tests not run: skipped on the cold pass, or on a runtime ZYGOTE_TEST_RUNTIMES excludes.
not_run=$(grep -c 'NOTICE: .*: not run' "${test_log}" || true)
total_ignored=$((total_ignored + cold_skipped + not_run))
mapfile -t failed_tests < <(sed -nE 's/^test (.*) \.\.\. FAILED$/\1/p' "${test_log}")

if [[ ${result} -ne 0 ]]; then
	print_logs
	save_logs
fi
step "stopping containerd and cleaning up"
stop_containerd
echo
echo "=== hack/test.sh summary (runtimes: ${ZYGOTE_TEST_RUNTIMES}, containerd ${ZYGOTE_CONTAINERD_VERSION:-system}, $((SECONDS - start_time))s, log: ${test_log})"
if [[ ${#failed_tests[@]} -gt 0 ]]; then
	echo "failed tests:"
	printf '  %s\n' "${failed_tests[@]}"
fi
if [[ ${result} -eq 0 ]]; then
	echo "=== hack/test.sh: PASSED"
else
	echo "=== hack/test.sh: FAILED (cargo test exited ${result})"
fi
echo "summary: ${total_passed} passed, ${total_failed} failed, ${total_ignored} skipped"
summary_printed=1
