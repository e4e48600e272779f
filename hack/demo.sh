#!/usr/bin/env bash
# The main job end to end, on this machine:
#   install prerequisites (apt), build zygote (release), build a busybox OCI
#   image locally, start a private containerd under a temp dir, run a
#   container through zygote (and through runc-v2 for comparison), then run
#   hack/bench for medians and ratios. Everything is stopped and removed at
#   the end, also on failure.
#
# Usage: hack/demo.sh [-n RUNS]     (RUNS per runtime for the benchmark, default 20)
set -euo pipefail

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
runs=20
[[ ${1:-} == "-n" ]] && runs="${2:?-n needs a number}"

[[ $(id -u) -eq 0 ]] || { echo "demo.sh: must run as root (containers, mounts, cgroups)" >&2; exit 1; }

"${hack_dir}/install-deps.sh"
(cd "${repo_dir}" && cargo build --release --workspace --bins)

image_dir="${ZYGOTE_IMAGE_DIR:-/var/tmp/zygote-image}"
"${hack_dir}/build-image.sh" "${image_dir}"
# shellcheck disable=SC1091
source "${image_dir}/image.env"
"${hack_dir}/build-wasm-image.sh" "${image_dir}/wasm"
# shellcheck disable=SC1091
source "${image_dir}/wasm/image.env"

dir="$(mktemp -d /var/tmp/zygote-demo.XXXXXX)"
cleanup() { "${hack_dir}/containerd.sh" stop "${dir}" || true; }
trap cleanup EXIT

# Profiles: "default" (warm pool) and "cold" (pool disabled), see the file.
export ZYGOTE_CONFIG="${ZYGOTE_CONFIG:-${hack_dir}/bench/zygote.toml}"
export ZYGOTE_WASM_CACHE_DIR="${dir}/wasm-cache"
"${hack_dir}/containerd.sh" start "${dir}"
ctr=(ctr --address "${dir}/containerd.sock")
"${ctr[@]}" images import --base-name "${IMAGE_BASE_NAME}" "${IMAGE_TAR}" >/dev/null
"${ctr[@]}" images import --base-name "${WASM_IMAGE_BASE_NAME}" "${WASM_IMAGE_TAR}" >/dev/null

echo
echo "== one container through zygote:"
"${ctr[@]}" run --rm --runtime io.containerd.zygote.v1 "${IMAGE_REF}" demo-hello \
	sh -c 'echo "hello from $(hostname), pid $$, uid $(id -u)"'
echo
echo "== a WebAssembly module through zygote (an image whose entrypoint is /hello.wasm):"
"${ctr[@]}" run --rm --runtime io.containerd.zygote.v1 "${WASM_IMAGE_REF}" demo-wasm
echo
echo "== the daemon and its pools, as zygotectl (beside the shim) sees them:"
"${repo_dir}/target/release/zygotectl" --address "${dir}/containerd.sock" --state-dir "${dir}/zygote" status
echo
echo "== the same command, timed (zygote, then runc-v2):"
for rt in io.containerd.zygote.v1 io.containerd.runc.v2; do
	start=$(date +%s%N)
	"${ctr[@]}" run --rm --runtime "${rt}" "${IMAGE_REF}" "demo-${rt##*.}-$$" /bin/true
	echo "  ${rt}: $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
echo
echo "== benchmark (hack/bench, ${runs} interleaved runs each):"
"${repo_dir}/target/release/bench" --address "${dir}/containerd.sock" --image "${IMAGE_REF}" \
	--state-dir "${dir}/zygote" -n "${runs}" --tasks 10 \
	--wasm-image "${WASM_IMAGE_REF}" --wasm-cache "${ZYGOTE_WASM_CACHE_DIR}"
