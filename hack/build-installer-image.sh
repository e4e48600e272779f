#!/usr/bin/env bash
# Build the node installer image of charts/zygote locally (no registry) with
# umoci, as hack/build-image.sh builds the test image.
#
# Usage: hack/build-installer-image.sh <out-dir>
#
# The image holds
#   /zygote/bin/zygote-installer            the node installer (the DaemonSet's command)
#   /zygote/bin/containerd-shim-zygote-v1   the shim it copies to the host
#   /zygote/bin/zygotectl                   the CLI it copies to the host
#   the glibc libraries they link           (found by ldd)
#   /bin/busybox + applets                  sh and sleep for the pod's wait
#                                           container, nsenter for
#                                           `--restart systemd`
# The three zygote binaries come from $ZYGOTE_BIN_DIR (default
# target/release: build them first with `cargo build --release`); a missing
# one is an error naming it.
#
# Output (in <out-dir>):
#   layout/                       the OCI image layout
#   zygote-installer-oci.tar      the same as an OCI archive
#   image.env                     INSTALLER_IMAGE_REF=..., INSTALLER_IMAGE_TAR=...
#
# Import into a containerd (e.g. a test node) with:
#   ctr -n k8s.io images import --base-name docker.io/zygote/installer \
#       <out-dir>/zygote-installer-oci.tar
# Push to a registry with skopeo (Debian package skopeo), e.g.:
#   skopeo copy oci-archive:<out-dir>/zygote-installer-oci.tar \
#       docker://registry.example.com/zygote/installer:0.1.0
# or, after the ctr import above, `ctr images tag` + `ctr images push`.
#
# Environment: ZYGOTE_BIN_DIR (see above), ZYGOTE_INSTALLER_IMAGE_TAG (default:
# charts/zygote's appVersion), BUSYBOX (default /bin/busybox, must be static).
set -euo pipefail

die() {
	echo "build-installer-image.sh: error: $*" >&2
	exit 1
}

[[ $# -eq 1 ]] || {
	echo "usage: $0 <out-dir>" >&2
	exit 2
}
out_dir="$1"

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
bin_dir="${ZYGOTE_BIN_DIR:-${repo_dir}/target/release}"
readonly BUSYBOX="${BUSYBOX:-/bin/busybox}"
readonly BINARIES=(zygote-installer containerd-shim-zygote-v1 zygotectl)
readonly IMAGE_BASE_NAME="docker.io/zygote/installer"

[[ ${EUID} -eq 0 ]] || die "must run as root (umoci unpack/repack keep owners and modes)"
command -v umoci >/dev/null 2>&1 || die "umoci not found (run hack/install-deps.sh)"
command -v jq >/dev/null 2>&1 || die "jq not found (run hack/install-deps.sh)"
for b in "${BINARIES[@]}"; do
	[[ -x ${bin_dir}/${b} ]] || die "${bin_dir}/${b} is missing: build it (cargo build --release) or set ZYGOTE_BIN_DIR"
done
[[ -x ${BUSYBOX} ]] || die "${BUSYBOX} not found (install busybox-static)"
if command -v file >/dev/null 2>&1 && file -L "${BUSYBOX}" | grep -q 'dynamically linked'; then
	die "${BUSYBOX} is dynamically linked; install busybox-static"
fi

tag="${ZYGOTE_INSTALLER_IMAGE_TAG:-$(sed -nE 's/^appVersion: *"?([^"]+)"?$/\1/p' "${repo_dir}/charts/zygote/Chart.yaml")}"
[[ -n ${tag} ]] || die "no tag: charts/zygote/Chart.yaml has no appVersion (set ZYGOTE_INSTALLER_IMAGE_TAG)"

case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported architecture $(uname -m)" ;;
esac

mkdir -p "${out_dir}"
out_dir="$(readlink -f "${out_dir}")"
work="$(mktemp -d "${out_dir}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
layout="${work}/layout"
bundle="${work}/bundle"

echo "build-installer-image.sh: building ${IMAGE_BASE_NAME}:${tag} from ${bin_dir}"
umoci init --layout "${layout}"
umoci new --image "${layout}:${tag}"
umoci unpack --image "${layout}:${tag}" "${bundle}"
rootfs="${bundle}/rootfs"
install -d -m 0755 "${rootfs}"/{bin,etc,zygote/bin,tmp,host,proc,sys,dev,run}
chmod 1777 "${rootfs}/tmp"
for b in "${BINARIES[@]}"; do
	install -m 0755 "${bin_dir}/${b}" "${rootfs}/zygote/bin/${b}"
done
# The binaries are linked against the build machine's glibc: its shared
# libraries (as ldd resolves them) go into the image at the same paths.
mapfile -t libs < <(for b in "${BINARIES[@]}"; do ldd "${bin_dir}/${b}"; done |
	grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
[[ ${#libs[@]} -gt 0 ]] || die "ldd found no shared libraries (is ldd installed?)"
for lib in "${libs[@]}"; do
	install -D -m 0755 "$(readlink -f "${lib}")" "${rootfs}${lib}"
done
install -m 0755 "${BUSYBOX}" "${rootfs}/bin/busybox"
while IFS= read -r applet; do
	[[ -n ${applet} && ${applet} != busybox ]] || continue
	ln -sf busybox "${rootfs}/bin/${applet}"
done < <("${BUSYBOX}" --list)
for a in sh sleep nsenter; do
	[[ -e ${rootfs}/bin/${a} ]] || die "busybox has no ${a} applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"${rootfs}/etc/passwd"
echo 'root:x:0:' >"${rootfs}/etc/group"

umoci repack --image "${layout}:${tag}" "${bundle}"
umoci config --image "${layout}:${tag}" \
	--config.entrypoint /zygote/bin/zygote-installer \
	--config.cmd status \
	--config.env PATH=/zygote/bin:/bin \
	--config.workingdir / \
	--architecture "${arch}" \
	--os linux \
	--author zygote \
	--history.created_by "hack/build-installer-image.sh"
umoci gc --layout "${layout}"
ref_name="$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // empty' "${layout}/index.json")"
[[ ${ref_name} == "${tag}" ]] || die "index.json lacks org.opencontainers.image.ref.name=${tag} (got '${ref_name}')"

tar --numeric-owner --owner=0 --group=0 -C "${layout}" -cf "${work}/image.tar" oci-layout index.json blobs
rm -rf "${out_dir}/layout"
mv "${layout}" "${out_dir}/layout"
mv -f "${work}/image.tar" "${out_dir}/zygote-installer-oci.tar"
cat >"${out_dir}/image.env" <<EOF
INSTALLER_IMAGE_REF=${IMAGE_BASE_NAME}:${tag}
INSTALLER_IMAGE_BASE_NAME=${IMAGE_BASE_NAME}
INSTALLER_IMAGE_TAR=${out_dir}/zygote-installer-oci.tar
INSTALLER_IMAGE_LAYOUT=${out_dir}/layout
EOF
echo "build-installer-image.sh: wrote ${out_dir}/zygote-installer-oci.tar and ${out_dir}/layout (${IMAGE_BASE_NAME}:${tag})"
