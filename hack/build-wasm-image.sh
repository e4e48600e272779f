#!/usr/bin/env bash
# Build the WebAssembly test image: the modules of tests/wasm/*.wat
# (compiled to .wasm by hack/wasm-modules with the `wat` crate) in an
# ordinary OCI image whose entrypoint is /hello.wasm, packaged with umoci as
# an OCI-layout tar that `ctr images import` (containerd 1.6) accepts.
#
# Usage: hack/build-wasm-image.sh <out-dir>
#
# Output (in <out-dir>): wasm-oci.tar, modules/ (the .wasm files),
# image.env (WASM_IMAGE_REF, WASM_IMAGE_BASE_NAME, WASM_IMAGE_TAR,
# WASM_MODULES). Import with:
#   ctr images import --base-name docker.io/zygote/wasm <out-dir>/wasm-oci.tar
# Always rebuilt (it takes about a second once wasm-modules is built).
set -euo pipefail

readonly IMAGE_BASE_NAME="docker.io/zygote/wasm"
readonly IMAGE_TAG="latest"

die() {
	echo "build-wasm-image.sh: error: $*" >&2
	exit 1
}

[[ $# -eq 1 ]] || { echo "usage: $0 <out-dir>" >&2; exit 2; }
[[ ${EUID} -eq 0 ]] || die "must run as root (umoci unpack)"
command -v umoci >/dev/null 2>&1 || die "umoci not found (run hack/install-deps.sh)"
command -v jq >/dev/null 2>&1 || die "jq not found (run hack/install-deps.sh)"

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$1"
out_dir="$(readlink -f "$1")"
work="$(mktemp -d "${out_dir}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

rm -rf "${out_dir}/modules"
(cd "${repo_dir}" && cargo run --release -q -p zygote-wasm-modules -- tests/wasm "${out_dir}/modules")

layout="${work}/layout"
bundle="${work}/bundle"
umoci init --layout "${layout}"
umoci new --image "${layout}:${IMAGE_TAG}"
umoci unpack --image "${layout}:${IMAGE_TAG}" "${bundle}"
rootfs="${bundle}/rootfs"
install -d -m 0755 "${rootfs}/etc" "${rootfs}/bin" "${rootfs}/data"
install -d -m 1777 "${rootfs}/tmp"
install -m 0644 "${out_dir}"/modules/*.wasm "${rootfs}/"
# Found through PATH and by its header alone: no extension, not executable.
install -m 0644 "${out_dir}/modules/hello.wasm" "${rootfs}/bin/hello"
echo "greetings from the rootfs" >"${rootfs}/etc/greeting"

umoci repack --image "${layout}:${IMAGE_TAG}" "${bundle}"
# umoci new already set os linux and this machine's architecture: an
# ordinary image (runwasi's first convention), not an OCI Wasm artifact.
umoci config --image "${layout}:${IMAGE_TAG}" \
	--config.cmd /hello.wasm \
	--config.env PATH=/bin \
	--config.workingdir / \
	--author zygote \
	--history.created_by "hack/build-wasm-image.sh"
umoci gc --layout "${layout}"
ref_name="$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "${layout}/index.json")"
[[ ${ref_name} == "${IMAGE_TAG}" ]] || die "index.json lacks org.opencontainers.image.ref.name=${IMAGE_TAG}"
tar --numeric-owner --owner=0 --group=0 -C "${layout}" -cf "${out_dir}/wasm-oci.tar" oci-layout index.json blobs
cat >"${out_dir}/image.env" <<EOT
WASM_IMAGE_REF=${IMAGE_BASE_NAME}:${IMAGE_TAG}
WASM_IMAGE_BASE_NAME=${IMAGE_BASE_NAME}
WASM_IMAGE_TAR=${out_dir}/wasm-oci.tar
WASM_MODULES=${out_dir}/modules
EOT
echo "build-wasm-image.sh: wrote ${out_dir}/wasm-oci.tar (${IMAGE_BASE_NAME}:${IMAGE_TAG})"
