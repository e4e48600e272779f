#!/usr/bin/env bash
# Build the CRI sandbox ("pause") image locally with umoci: static busybox
# running `sleep` as pid 1 (it stays up, has no SIGTERM handler as pid 1 and
# dies on SIGKILL, which is how containerd stops a sandbox). Packaged as an
# OCI-layout tar that `ctr images import` accepts.
#
# Usage: hack/build-pause-image.sh <out-dir>
#
# Output (in <out-dir>): pause-oci.tar, image.env (PAUSE_IMAGE_REF,
# PAUSE_IMAGE_BASE_NAME, PAUSE_IMAGE_TAR), stamp (cache key). Import with
#   ctr -n k8s.io images import --base-name docker.io/zygote/pause <tar>
# which gives docker.io/zygote/pause:3.9, the name CRI's sandbox_image uses.
set -euo pipefail

readonly BASE_NAME="docker.io/zygote/pause"
readonly TAG="3.9"
readonly BUSYBOX="${BUSYBOX:-/bin/busybox}"

die() {
	echo "build-pause-image.sh: error: $*" >&2
	exit 1
}

[[ $# -eq 1 ]] || {
	echo "usage: $0 <out-dir>" >&2
	exit 2
}
[[ ${EUID} -eq 0 ]] || die "must run as root (umoci unpack)"
command -v umoci >/dev/null 2>&1 || die "umoci not found (run hack/install-deps.sh)"
[[ -x ${BUSYBOX} ]] || die "${BUSYBOX} not found (install busybox-static)"

case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported architecture $(uname -m)" ;;
esac

out_dir="$1"
mkdir -p "${out_dir}"
out_dir="$(readlink -f "${out_dir}")"
tar_path="${out_dir}/pause-oci.tar"
stamp_value="$(sha256sum "${BUSYBOX}" "$(readlink -f "${BASH_SOURCE[0]}")" | cut -d' ' -f1 | tr '\n' ' ')${arch}"
if [[ -f ${out_dir}/stamp && -f ${tar_path} && "$(cat "${out_dir}/stamp")" == "${stamp_value}" ]]; then
	exit 0
fi

work="$(mktemp -d "${out_dir}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
layout="${work}/layout"
umoci init --layout "${layout}"
umoci new --image "${layout}:${TAG}"
umoci unpack --image "${layout}:${TAG}" "${work}/bundle"
install -d -m 0755 "${work}/bundle/rootfs"/{bin,dev,proc,sys,etc}
install -m 0755 "${BUSYBOX}" "${work}/bundle/rootfs/bin/busybox"
umoci repack --image "${layout}:${TAG}" "${work}/bundle"
umoci config --image "${layout}:${TAG}" \
	--config.entrypoint /bin/busybox --config.entrypoint sleep --config.entrypoint 2147483647 \
	--config.workingdir / --architecture "${arch}" --os linux --author zygote \
	--history.created_by "hack/build-pause-image.sh"
umoci gc --layout "${layout}"
tar --numeric-owner --owner=0 --group=0 -C "${layout}" -cf "${work}/pause-oci.tar" oci-layout index.json blobs
mv -f "${work}/pause-oci.tar" "${tar_path}"
cat >"${out_dir}/image.env" <<EOF
PAUSE_IMAGE_REF=${BASE_NAME}:${TAG}
PAUSE_IMAGE_BASE_NAME=${BASE_NAME}
PAUSE_IMAGE_TAR=${tar_path}
EOF
echo "${stamp_value}" >"${out_dir}/stamp"
echo "build-pause-image.sh: wrote ${tar_path} (${BASE_NAME}:${TAG})"
