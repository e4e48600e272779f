#!/usr/bin/env bash
# Runs inside the cgroup v2 test VM (started by the image's zygote-vm.service,
# see hack/vm/build.sh): the integration test binaries the host built, against
# a private containerd started as hack/test.sh does on the host.
#
# Shares (9p): /mnt/repo the worktree (read-only: hack/, tests/integration/config,
# target/release), /mnt/cache the host's /var/tmp/zygote-cache (read-only: the
# test images), /mnt/out results (read-write). /mnt/out/params.env (written by
# hack/vm/run.sh) names the test binaries (VM_TESTS: "<binary path>..." relative
# to the repo) and the filters (VM_FILTERS). Writes /mnt/out/tests.log, the
# per-binary exit codes to /mnt/out/results, and copies the logs.
set -uo pipefail

readonly REPO=/mnt/repo CACHE=/mnt/cache OUT=/mnt/out
step() { echo "=== guest.sh: $* (uptime $(cut -d' ' -f1 /proc/uptime)s)"; }

# shellcheck disable=SC1091
source "${OUT}/params.env"
step "kernel $(uname -r), cgroup: $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || echo "guest.sh: warning: /sys/fs/cgroup is not cgroup2"
echo "containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | head -n1 | awk '{print $3}'), PID 1 $(cat /proc/1/comm)"
echo "CPUs $(nproc), NUMA nodes: $(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l), memory $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

# shellcheck disable=SC1091
source "${CACHE}/image/image.env"
# shellcheck disable=SC1091
source "${CACHE}/wasm-image/image.env"
# image.env names host paths under the cache: the same files under /mnt/cache.
host_cache="${VM_HOST_CACHE:-/var/tmp/zygote-cache}"
IMAGE_TAR="${CACHE}${IMAGE_TAR#"${host_cache}"}"
IMAGE_ROOTFS="${CACHE}${IMAGE_ROOTFS#"${host_cache}"}"
WASM_IMAGE_TAR="${CACHE}${WASM_IMAGE_TAR#"${host_cache}"}"
WASM_MODULES="${CACHE}${WASM_MODULES#"${host_cache}"}"

export ZYGOTE_BIN_DIR="${REPO}/target/release"
# Bench mode (hack/vm/run.sh with ZYGOTE_VM_BENCH=N): hack/bench's profiles;
# VM_BENCH_BIN_DIR (under the cache share) swaps in other shim binaries.
if [[ ${VM_BENCH:-0} -gt 0 ]]; then
	[[ -z ${VM_BENCH_BIN_DIR:-} ]] || export ZYGOTE_BIN_DIR="${CACHE}${VM_BENCH_BIN_DIR#"${VM_HOST_CACHE:-/var/tmp/zygote-cache}"}"
fi
mkdir -p /var/tmp
ctrd_dir="$(mktemp -d /var/tmp/zt.XXXXXX)"
state_base="${ctrd_dir}/run/node/zygote-state-"
pad_len=$((107 - 29 - ${#state_base}))
export ZYGOTE_STATE_DIR="${state_base}$(head -c "${pad_len}" /dev/zero | tr '\0' d)"
export ZYGOTE_WASM_CACHE_DIR="${ctrd_dir}/wasm-cache"
NAMESPACE="zygote-test-${ctrd_dir##*.}"
export ZYGOTE_CONFIG="${REPO}/tests/integration/config/warm.toml"
[[ ${VM_BENCH:-0} -eq 0 ]] || export ZYGOTE_CONFIG="${REPO}/hack/bench/zygote.toml"

step "starting a private containerd in ${ctrd_dir}"
if ! "${REPO}/hack/containerd.sh" start "${ctrd_dir}"; then
	tail -n 50 "${ctrd_dir}/containerd.log"
	echo "guest.sh: containerd did not start"
	exit 2
fi
ctr_() { ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" "$@"; }
step "importing the images"
ctr_ images import --base-name "${IMAGE_BASE_NAME}" "${IMAGE_TAR}" &&
	ctr_ images import --base-name "${WASM_IMAGE_BASE_NAME}" "${WASM_IMAGE_TAR}" || {
	echo "guest.sh: image import failed"
	exit 2
}

export ZYGOTE_TEST_CONTAINERD_DIR="${ctrd_dir}"
export ZYGOTE_TEST_ADDRESS="${ctrd_dir}/containerd.sock"
export ZYGOTE_TEST_IMAGE="${IMAGE_REF}"
export ZYGOTE_TEST_IMAGE_TAR="${IMAGE_TAR}"
export ZYGOTE_TEST_IMAGE_BASE_NAME="${IMAGE_BASE_NAME}"
export ZYGOTE_TEST_ROOTFS="${IMAGE_ROOTFS}"
export ZYGOTE_TEST_WASM_IMAGE="${WASM_IMAGE_REF}"
export ZYGOTE_TEST_WASM_MODULES="${WASM_MODULES}"
export ZYGOTE_TEST_NAMESPACE="${NAMESPACE}"
export ZYGOTE_HACK_DIR="${REPO}/hack"
export ZYGOTE_TEST_RUNTIMES="${ZYGOTE_TEST_RUNTIMES:-runc,zygote}"
export ZYGOTE_TEST_PATH=warm
# Under CI every runtime must run (require_runtime panics otherwise), as on the host.
[[ -z ${CI:-} ]] || export CI
export RUST_BACKTRACE=1

: >"${OUT}/results"
if [[ ${VM_BENCH:-0} -gt 0 ]]; then
	step "bench: ${VM_BENCH} rounds (shim from ${ZYGOTE_BIN_DIR})"
	"${REPO}/hack/vm/bench.sh" "${VM_BENCH}" ctr --address "${ctrd_dir}/containerd.sock" -n "${NAMESPACE}" 2>&1 |
		tee -a "${OUT}/tests.log"
	echo "bench ${PIPESTATUS[0]}" >>"${OUT}/results"
	VM_TESTS=""
fi
read -r -a filters <<<"${VM_FILTERS:-}"
for bin in ${VM_TESTS}; do
	step "running ${bin} ${filters[*]}"
	(cd "${REPO}/tests/integration" && "${REPO}/${bin}" --test-threads="${ZYGOTE_TEST_THREADS:-1}" "${filters[@]}") 2>&1 |
		tee -a "${OUT}/tests.log"
	echo "${bin} ${PIPESTATUS[0]}" >>"${OUT}/results"
done

step "stopping containerd"
mkdir -p "${OUT}/logs"
cp "${ctrd_dir}/containerd.log" "${OUT}/logs/" 2>/dev/null
for f in "${ZYGOTE_STATE_DIR}"/*/daemon.log; do
	[[ -f ${f} ]] && cp "${f}" "${OUT}/logs/daemon-$(basename "$(dirname "${f}")").log"
done
"${REPO}/hack/containerd.sh" stop "${ctrd_dir}" || echo "guest.sh: warning: cleanup of ${ctrd_dir} failed"
step "done"
