#!/usr/bin/env bash
# Build a tiny busybox OCI image locally (no registry needed) with umoci and
# package it as an OCI-layout tar that `ctr images import` (containerd 1.6)
# accepts.
#
# Usage: hack/build-image.sh <out-dir>
#
# Output (in <out-dir>):
#   busybox-oci.tar   OCI image layout archive; its index.json carries the
#                     annotation org.opencontainers.image.ref.name=latest
#   rootfs/           the unpacked root filesystem of the image (handy for
#                     tests that run with `ctr run --rootfs` / `--config`)
#   image.env         IMAGE_REF=..., IMAGE_TAR=..., IMAGE_ROOTFS=...
#   stamp             cache key (sha256 of /bin/busybox and of this script)
#
# Import with:
#   ctr -n <ns> images import --base-name docker.io/zygote/busybox \
#       <out-dir>/busybox-oci.tar
# which creates the image reference  docker.io/zygote/busybox:latest
# (ctr 1.6 needs --base-name because the OCI ref.name annotation only holds
# the tag; without it ctr invents a name "import-<date>").
#
# The build is skipped when <out-dir>/stamp matches (same /bin/busybox, same
# script).  Set ZYGOTE_IMAGE_REBUILD=1 to force a rebuild.
set -euo pipefail

readonly IMAGE_BASE_NAME="docker.io/zygote/busybox"
readonly IMAGE_TAG="latest"
readonly IMAGE_REF="${IMAGE_BASE_NAME}:${IMAGE_TAG}"
readonly BUSYBOX="${BUSYBOX:-/bin/busybox}"

die() {
	echo "build-image.sh: error: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 <out-dir>" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
out_dir="$1"

[[ ${EUID} -eq 0 ]] || die "must run as root (umoci unpack needs to create device nodes/owners)"
command -v umoci >/dev/null 2>&1 || die "umoci not found (run hack/install-deps.sh)"
command -v jq >/dev/null 2>&1 || die "jq not found (run hack/install-deps.sh)"
[[ -x ${BUSYBOX} ]] || die "${BUSYBOX} not found (install busybox-static)"
# A dynamically linked busybox would not run inside the image.
if command -v file >/dev/null 2>&1 && file -L "${BUSYBOX}" | grep -q 'dynamically linked'; then
	die "${BUSYBOX} is dynamically linked; install busybox-static"
fi

go_arch() {
	local m
	m="$(uname -m)"
	case "${m}" in
	x86_64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	armv7l | armv7*) echo arm ;;
	ppc64le) echo ppc64le ;;
	s390x) echo s390x ;;
	riscv64) echo riscv64 ;;
	i?86) echo 386 ;;
	*) die "unsupported architecture ${m}" ;;
	esac
}

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
stamp_value="$(sha256sum "${BUSYBOX}" | cut -d' ' -f1) $(sha256sum "${script_path}" | cut -d' ' -f1) $(go_arch)"

mkdir -p "${out_dir}"
out_dir="$(readlink -f "${out_dir}")"
tar_path="${out_dir}/busybox-oci.tar"

if [[ ${ZYGOTE_IMAGE_REBUILD:-0} != 1 && -f ${out_dir}/stamp && -f ${tar_path} && -d ${out_dir}/rootfs ]] &&
	[[ "$(cat "${out_dir}/stamp")" == "${stamp_value}" ]]; then
	echo "build-image.sh: up to date: ${tar_path} (${IMAGE_REF})"
	exit 0
fi

work="$(mktemp -d "${out_dir}/.build.XXXXXX")"
cleanup() {
	rm -rf "${work}"
}
trap cleanup EXIT

layout="${work}/layout"
bundle="${work}/bundle"

echo "build-image.sh: building ${IMAGE_REF} from ${BUSYBOX} in ${out_dir}"
umoci init --layout "${layout}"
umoci new --image "${layout}:${IMAGE_TAG}"
umoci unpack --image "${layout}:${IMAGE_TAG}" "${bundle}"

rootfs="${bundle}/rootfs"
install -d -m 0755 "${rootfs}"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,root,home,var,run,mnt}
install -d -m 1777 "${rootfs}/tmp" "${rootfs}/var/tmp"
chmod 0700 "${rootfs}/root"
install -d -m 0755 -o 1000 -g 1000 "${rootfs}/home/user"
install -m 0755 "${BUSYBOX}" "${rootfs}/bin/busybox"

# One symlink per applet, all in /bin (PATH includes /bin).
while IFS= read -r applet; do
	[[ -n ${applet} && ${applet} != busybox ]] || continue
	ln -sf busybox "${rootfs}/bin/${applet}"
done < <("${BUSYBOX}" --list)
[[ -e ${rootfs}/bin/sh ]] || die "busybox has no sh applet"

cat >"${rootfs}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"${rootfs}/etc/group" <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
chmod 0644 "${rootfs}/etc/passwd" "${rootfs}/etc/group"
: >"${rootfs}/etc/hosts"
: >"${rootfs}/etc/resolv.conf"
echo zygote >"${rootfs}/etc/hostname"

umoci repack --image "${layout}:${IMAGE_TAG}" "${bundle}"
umoci config --image "${layout}:${IMAGE_TAG}" \
	--config.cmd sh \
	--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.workingdir / \
	--architecture "$(go_arch)" \
	--os linux \
	--author zygote \
	--history.created_by "hack/build-image.sh"
umoci gc --layout "${layout}"

# Sanity: exactly one manifest carrying the ref.name annotation ctr needs.
ref_name="$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "${layout}/index.json")"
[[ ${ref_name} == "${IMAGE_TAG}" ]] || die "index.json lacks org.opencontainers.image.ref.name=${IMAGE_TAG} (got '${ref_name}')"

# Archive the layout (index.json and oci-layout at the top of the tar).
tar --numeric-owner --owner=0 --group=0 -C "${layout}" -cf "${work}/busybox-oci.tar" oci-layout index.json blobs

# Keep an unpacked rootfs next to the archive for --rootfs based tests.
rm -rf "${out_dir}/rootfs"
mv "${rootfs}" "${out_dir}/rootfs"
mv -f "${work}/busybox-oci.tar" "${tar_path}"
cat >"${out_dir}/image.env" <<EOF
IMAGE_REF=${IMAGE_REF}
IMAGE_BASE_NAME=${IMAGE_BASE_NAME}
IMAGE_TAR=${tar_path}
IMAGE_ROOTFS=${out_dir}/rootfs
EOF
echo "${stamp_value}" >"${out_dir}/stamp"
echo "build-image.sh: wrote ${tar_path} (import with --base-name ${IMAGE_BASE_NAME} -> ${IMAGE_REF})"
