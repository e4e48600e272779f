#!/usr/bin/env bash
# hack/bench/pure-v1.sh [-n N] [--burst N] [--pods-burst N]
#
# runc-v2, runc-v2 driving crun, and zygote side by side on a cgroup v1
# *hybrid* host, where crun refuses to run ("cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2": the host's unified
# hierarchy has a controller enabled) and `bench` therefore leaves crun out.
#
# It re-runs itself in a private mount namespace (unshare -m, private
# propagation), unmounts the unified hierarchy there only, and starts a
# private containerd (CRI plugin on) inside it: containerd, the shims, runc,
# crun and the zygote daemon then all see a pure cgroup v1 node. The host's
# mounts are untouched (the namespace goes away with the script). Every
# runtime runs on the same layout, so the comparison is fair, but it is a
# v1 node, not the hybrid host: a zygote warm claim does not pay the unified
# hierarchy's migration here (README, "Where a warm Create's time goes").
# On a cgroup v2 node run `bench` and `bench-pods` directly.
#
# Runs `target/release/bench` (ctr run --rm /bin/true, with containerd's
# floor) and `target/release/bench-pods --handlers runc,crun,zygote` (pod
# start through CRI). Needs what hack/demo.sh needs, built already
# (`cargo build --release --workspace --bins`).
set -euo pipefail

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
runs=20 burst=10 pods_burst=10
while [[ $# -gt 0 ]]; do
	case $1 in
	-n) runs="${2:?-n needs a number}" && shift 2 ;;
	--burst) burst="${2:?--burst needs a number}" && shift 2 ;;
	--pods-burst) pods_burst="${2:?--pods-burst needs a number}" && shift 2 ;;
	*) echo "pure-v1.sh: unknown argument $1" >&2 && exit 2 ;;
	esac
done
die() { echo "pure-v1.sh: $*" >&2 && exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (containers, mounts, cgroups)"
readonly unified=/sys/fs/cgroup/unified
if [[ -z ${ZYGOTE_PURE_V1_INNER:-} ]]; then
	[[ $(stat -fc %T /sys/fs/cgroup) == tmpfs ]] && mountpoint -q "${unified}" ||
		die "not a cgroup v1 hybrid host (no cgroup2 at ${unified}): run target/release/bench directly"
	for b in bench bench-pods containerd-shim-zygote-v1 zygotectl; do
		[[ -x ${repo_dir}/target/release/${b} ]] || die "target/release/${b} is missing: cargo build --release --workspace --bins"
	done
	command -v crun >/dev/null || die "crun is not installed (hack/install-deps.sh installs it)"
	ZYGOTE_PURE_V1_INNER=1 exec unshare -m --propagation private "$0" -n "${runs}" --burst "${burst}" --pods-burst "${pods_burst}"
fi

umount "${unified}" || die "cannot unmount ${unified} in the private mount namespace"
echo "cgroup hierarchies in this mount namespace: $(ls /sys/fs/cgroup | tr '\n' ' ')"

image_dir="${ZYGOTE_IMAGE_DIR:-/var/tmp/zygote-image}"
"${hack_dir}/build-image.sh" "${image_dir}" >/dev/null
# shellcheck disable=SC1091
source "${image_dir}/image.env"

dir="$(mktemp -d /var/tmp/zygote-purev1.XXXXXX)"
cleanup() { "${hack_dir}/containerd.sh" stop "${dir}" || true; }
trap cleanup EXIT
export ZYGOTE_CONFIG="${ZYGOTE_CONFIG:-${hack_dir}/bench/zygote.toml}"
export ZYGOTE_CRI_ALT_PROFILE=cold
ZYGOTE_CRI=1 "${hack_dir}/containerd.sh" start "${dir}"
for ns in default k8s.io; do
	ctr --address "${dir}/containerd.sock" -n "${ns}" images import --base-name "${IMAGE_BASE_NAME}" "${IMAGE_TAR}" >/dev/null
done

echo
echo "== ctr run --rm, runc-v2 / runc-v2 + crun / zygote, ${runs} interleaved runs each (pure v1):"
"${repo_dir}/target/release/bench" --address "${dir}/containerd.sock" --image "${IMAGE_REF}" \
	--state-dir "${dir}/zygote" -n "${runs}" --tasks 2 --burst "${burst}"
echo
echo "== pod start through CRI, handlers runc / crun / zygote, ${runs} interleaved samples each (pure v1):"
"${repo_dir}/target/release/bench-pods" --cri "${dir}/containerd.sock" --image "${IMAGE_REF}" \
	--handlers runc,crun,zygote -n "${runs}" --burst "${pods_burst}"
