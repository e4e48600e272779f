#!/usr/bin/env bash
# Builds the cgroup v2 test VM's image from Debian packages, cached:
#   <cache>/<key>/vmlinuz    Debian's kernel (linux-image-<ver>-amd64, unpacked
#                            with dpkg-deb -x, never installed on the host)
#   <cache>/<key>/initrd.gz  a busybox initramfs that loads virtio + ext4 and
#                            switches to the root disk
#   <cache>/<key>/rootfs.img an ext4 image (mkfs.ext4 -d, no loop mount) of a
#                            debootstrap'd bookworm (minbase + systemd, dbus,
#                            containerd, runc, ...) with the kernel's modules and
#                            a unit, zygote-vm.service, that mounts the host's
#                            9p shares and runs hack/vm/guest.sh from the share
#                            (so changing guest.sh needs no rebuild)
# The key hashes this script, the package list and the kernel version: a change
# of any rebuilds; old keys are removed. Prints the image dir on stdout.
#
# Usage: hack/vm/build.sh
# Environment:
#   ZYGOTE_CACHE_DIR   cache root (default /var/tmp/zygote-cache); images in <root>/vm
#   ZYGOTE_VM_MIRROR   Debian mirror (default: the first deb.debian.org-style URI
#                      of the host's apt sources, else http://deb.debian.org/debian)
set -euo pipefail

vm_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly CACHE_ROOT="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}/vm"
readonly SUITE=bookworm
# What the guest needs: systemd as PID 1 (and dbus, for the systemd cgroup
# driver later), the runtimes compared (bookworm's containerd 1.6 and runc),
# kmod for 9p/overlay modules, and what the tests and hack/containerd.sh call.
readonly PACKAGES=(systemd systemd-sysv dbus kmod udev iproute2 containerd runc procps util-linux bsdutils jq)
# The modules the initramfs loads before it can mount the root disk.
readonly INITRD_MODULES=(virtio_pci virtio_blk ext4)

log() { echo "vm/build.sh: $*" >&2; }
die() {
	echo "vm/build.sh: error: $*" >&2
	exit 1
}
[[ ${EUID} -eq 0 ]] || die "must run as root (debootstrap)"
for t in debootstrap mkfs.ext4 dpkg-deb cpio busybox apt-get; do
	command -v "${t}" >/dev/null 2>&1 || die "${t} not found (hack/install-deps.sh installs it)"
done

kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | sed -nE 's/^ *Depends: (linux-image-[0-9].*-amd64)$/\1/p' | head -n1)"
[[ -n ${kernel_pkg} ]] || die "cannot resolve linux-image-amd64 (run apt-get update)"
kver="${kernel_pkg#linux-image-}"
key="$( {
	cat "${BASH_SOURCE[0]}" "${vm_dir}/initrd-init"
	echo "${SUITE} ${kernel_pkg} ${PACKAGES[*]}"
} | sha256sum | cut -c1-16)"
out="${CACHE_ROOT}/${key}"
if [[ -f ${out}/stamp ]]; then
	echo "${out}"
	exit 0
fi

mirror="${ZYGOTE_VM_MIRROR:-}"
if [[ -z ${mirror} ]]; then
	mirror="$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		head -n1 || true)"
	mirror="${mirror:-http://deb.debian.org/debian}"
fi

mkdir -p "${CACHE_ROOT}"
work="$(mktemp -d "${CACHE_ROOT}/build.XXXXXX")"
cleanup() {
	# debootstrap unmounts what it mounts in the chroot; refuse to remove
	# anything if a mount is still there.
	if grep -qF " ${work}/" /proc/self/mountinfo; then
		log "warning: mounts left under ${work}; not removing it"
	else
		rm -rf "${work}"
	fi
}
trap cleanup EXIT
t0=${SECONDS}

log "kernel ${kernel_pkg}"
(cd "${work}" && apt-get download -q "${kernel_pkg}" >&2 2>/dev/null) || (cd "${work}" && apt-get download "${kernel_pkg}" >&2)
dpkg-deb -x "${work}"/"${kernel_pkg}"_*.deb "${work}/kernel"

log "debootstrap ${SUITE} (${mirror})"
pkgs="${PACKAGES[*]}"
debootstrap --variant=minbase --include="${pkgs// /,}" "${SUITE}" "${work}/rootfs" "${mirror}" >"${work}/debootstrap.log" 2>&1 ||
	{
		tail -n 30 "${work}/debootstrap.log" >&2
		die "debootstrap failed"
	}
rootfs="${work}/rootfs"
rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"*_Packages

log "configuring the guest"
cp -a "${work}/kernel/lib/modules" "${rootfs}/lib/"
# The guest's own kmod (the host needs none).
chroot "${rootfs}" depmod "${kver}"
echo zygote-vm >"${rootfs}/etc/hostname"
# ctr --net-host bind-mounts the node's /etc/hosts (debootstrap makes none).
printf '127.0.0.1\tlocalhost\n127.0.1.1\tzygote-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"${rootfs}/etc/hosts"
[[ -e ${rootfs}/etc/resolv.conf ]] || : >"${rootfs}/etc/resolv.conf"
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"${rootfs}/etc/fstab"
passwd -R "${rootfs}" -d root >/dev/null
# Nothing at boot but what the tests need: no system containerd (the tests
# start a private one), no timers, no gettys.
for unit in containerd.service e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
	e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer getty@tty1.service serial-getty@ttyS0.service \
	systemd-pstore.service; do
	ln -sfn /dev/null "${rootfs}/etc/systemd/system/${unit}"
done
cat >"${rootfs}/usr/local/sbin/zygote-vm-guest" <<'EOF'
#!/bin/bash
# Mounts the host's shares and runs the suite (hack/vm/guest.sh from the share).
set -u
mkdir -p /mnt/repo /mnt/cache /mnt/out
for tag in repo cache out; do
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none "${tag}" "/mnt/${tag}" ||
		echo "zygote-vm-guest: cannot mount 9p share ${tag}"
done
if [[ -x /mnt/repo/hack/vm/guest.sh ]]; then
	/mnt/repo/hack/vm/guest.sh >/mnt/out/guest.log 2>&1
	echo "zygote-vm-guest: guest.sh exited $?" | tee -a /mnt/out/guest.log
else
	echo "zygote-vm-guest: no /mnt/repo/hack/vm/guest.sh"
fi
sync
systemctl poweroff --force
EOF
chmod 0755 "${rootfs}/usr/local/sbin/zygote-vm-guest"
cat >"${rootfs}/etc/systemd/system/zygote-vm.service" <<'EOF'
[Unit]
Description=zygote cgroup v2 test pass (hack/vm)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/zygote-vm-guest
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF
ln -sfn /etc/systemd/system/zygote-vm.service "${rootfs}/etc/systemd/system/multi-user.target.wants/zygote-vm.service"

log "initramfs"
initrd="${work}/initrd"
mkdir -p "${initrd}/bin" "${initrd}/modules"
cp "$(command -v busybox)" "${initrd}/bin/busybox"
chroot "${rootfs}" modprobe -S "${kver}" -a --show-depends "${INITRD_MODULES[@]}" |
	awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"${work}/mods"
[[ -s ${work}/mods ]] || die "no modules resolved for ${INITRD_MODULES[*]}"
: >"${initrd}/modules/order"
while read -r m; do
	cp "${rootfs}${m}" "${initrd}/modules/"
	echo "${m##*/}" >>"${initrd}/modules/order"
done <"${work}/mods"
install -m 0755 "${vm_dir}/initrd-init" "${initrd}/init"
(cd "${initrd}" && find . | cpio -o -H newc --quiet | gzip -1) >"${work}/initrd.gz"

log "root filesystem image"
mkfs.ext4 -q -F -L zygote-vm -d "${rootfs}" "${work}/rootfs.img" 4G >&2

mkdir -p "${out}.new"
mv "${work}/initrd.gz" "${work}/rootfs.img" "${out}.new/"
cp "${work}/kernel/boot/vmlinuz-${kver}" "${out}.new/vmlinuz"
echo "${kernel_pkg} ${SUITE} ${PACKAGES[*]} built in $((SECONDS - t0))s" >"${out}.new/stamp"
rm -rf "${out}"
mv "${out}.new" "${out}"
# Older keys: superseded.
find "${CACHE_ROOT}" -mindepth 1 -maxdepth 1 -type d ! -name "${key}" ! -name 'build.*' -exec rm -rf {} +
log "built ${out} in $((SECONDS - t0))s"
echo "${out}"
