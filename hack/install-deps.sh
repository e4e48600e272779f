#!/usr/bin/env bash
# Install what the zygote build and integration tests need on Debian 12.
# Idempotent: apt is only touched when a package is missing
# (ZYGOTE_FORCE_APT=1 forces apt-get update + install anyway).
set -euo pipefail

die() {
	echo "install-deps.sh: error: $*" >&2
	exit 1
}

log() {
	echo "install-deps.sh: $*" >&2
}

# containerd/runc/ctr: the real runtime stack compared against.
# umoci, busybox-static, jq: building the local test image (no registry here).
# bsdutils: `script` for the --tty tests; util-linux: mount tools/setsid;
# procps, iproute2: debugging; gcc/libc6-dev/pkg-config: the Rust linker.
# containernetworking-plugins: CNI (bridge, portmap, loopback) for the CRI
# tests' pods; protobuf-compiler: protoc, which the CRI client crate
# (k8s-cri) needs at build time. crun: hack/bench's third runtime (runc-v2
# driving crun), what a speed-minded user picks.
# qemu-system-x86, debootstrap, e2fsprogs, cpio: hack/vm (the cgroup v2 VM:
# QEMU, its Debian root filesystem as an ext4 image, its initramfs).
readonly PACKAGES=(
	containerd
	runc
	crun
	containernetworking-plugins
	protobuf-compiler
	umoci
	busybox-static
	jq
	bsdutils
	util-linux
	coreutils
	procps
	iproute2
	tar
	gcc
	libc6-dev
	pkg-config
	# tests/integration/tests/metrics.rs: a real Prometheus server (own port
	# and storage per test) and promtool; on a systemd host the package also
	# enables its own service on :9090, which the tests do not use.
	prometheus
	qemu-system-x86
	debootstrap
	e2fsprogs
	cpio
)

[[ ${EUID} -eq 0 ]] || die "must run as root (apt-get install, containerd); re-run with sudo"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian/Ubuntu only"

missing=()
for pkg in "${PACKAGES[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
	if [[ ${status} != installed ]]; then
		missing+=("${pkg}")
	fi
done

# apt-get that waits (up to ZYGOTE_APT_LOCK_WAIT seconds, default 900) for
# another apt or dpkg to let go of its locks: a fresh cloud VM's
# unattended-upgrades holds them for minutes after boot. dpkg's own lock
# honours DPkg::Lock::Timeout; the lists and archives locks of `apt-get
# update` do not on every apt version, so a lock failure is retried too.
apt_get() {
	local waited=0 limit="${ZYGOTE_APT_LOCK_WAIT:-900}" out rc
	while :; do
		out="$(apt-get -o DPkg::Lock::Timeout="${limit}" "$@" 2>&1)" && rc=0 || rc=$?
		printf '%s\n' "${out}"
		if [[ ${rc} -eq 0 ]]; then
			return 0
		fi
		if ! grep -qiE 'could not get lock|unable to acquire the dpkg frontend lock|unable to lock' <<<"${out}"; then
			return "${rc}"
		fi
		if ((waited >= limit)); then
			log "apt is still locked by another process after ${waited}s"
			return "${rc}"
		fi
		log "another apt/dpkg holds its lock (unattended-upgrades?); waiting (${waited}s of ${limit}s)"
		sleep 5
		waited=$((waited + 5))
	done
}

if [[ ${#missing[@]} -gt 0 || ${ZYGOTE_FORCE_APT:-0} == 1 ]]; then
	log "installing: ${missing[*]:-(forced) ${PACKAGES[*]}}"
	export DEBIAN_FRONTEND=noninteractive
	apt_get update || die "apt-get update failed"
	if [[ ${#missing[@]} -eq 0 ]]; then
		missing=("${PACKAGES[@]}")
	fi
	apt_get install -y --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
else
	log "all packages already installed"
fi

# Verify what we rely on really is there now.
for tool in containerd ctr runc umoci jq script setsid timeout protoc qemu-system-x86_64 debootstrap mkfs.ext4 cpio; do
	command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found on PATH after installing packages"
done
[[ -x /usr/lib/cni/bridge ]] || die "/usr/lib/cni/bridge missing (package containernetworking-plugins)"
[[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
if command -v file >/dev/null 2>&1 && file -L /bin/busybox | grep -q 'dynamically linked'; then
	die "/bin/busybox is dynamically linked; the busybox-static package is required"
fi

# The Rust toolchain is not installed here (rustup is expected).
if ! command -v cargo >/dev/null 2>&1; then
	if [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
		die "cargo is not on PATH but exists in ${HOME:-/root}/.cargo/bin: add it to PATH (source ~/.cargo/env)"
	fi
	die "cargo not found: install the Rust toolchain with rustup (https://rustup.rs) first"
fi
log "cargo: $(cargo --version)"
log "containerd: $(containerd --version)"
log "runc: $(runc --version | head -n1)"
log "ok"
