#!/usr/bin/env bash
# Debian's containerd packages of other releases, unpacked into a private
# cache WITHOUT touching the system's containerd or its apt state.
#
# Usage:
#   hack/containerd-versions.sh <version>   print the bin dir of containerd <version>
#                                           (fetched once, then cached)
#   hack/containerd-versions.sh system      print the system containerd's bin dir
#
# Versions and the Debian suite that has them:
#   1.7.24  trixie
#   2.1.9   sid
#
# How: a private sources list naming only that suite (the machine's Debian
# mirror, signed by debian-archive-keyring), private apt lists and cache dirs,
# `apt-get download containerd=<debian version>`, `dpkg-deb -x` into
#   ${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}/containerd/<version>/
# and the bin dir printed is <that>/usr/bin (containerd, ctr,
# containerd-shim-runc-v2). Only the containerd package is unpacked: the
# system's runc stays in use (sid's runc does not run on bookworm).
set -euo pipefail

cache_root="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}"
work=""
trap '[[ -z ${work} ]] || rm -rf "${work}"' EXIT
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() {
	echo "containerd-versions.sh: error: $*" >&2
	exit 1
}

log() {
	echo "containerd-versions.sh: $*" >&2
}

suite_of() {
	case "$1" in
	1.7.24) echo trixie ;;
	2.1.9) echo sid ;;
	*) die "unknown containerd version '$1' (known: 1.7.24 trixie, 2.1.9 sid, system)" ;;
	esac
}

# The Debian mirror this machine uses (first deb.debian.org-like URI of the
# main archive in its sources), else deb.debian.org.
mirror() {
	local m
	m="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ')"
	echo "${m:-http://deb.debian.org/debian}"
}

fetch() {
	local version="$1" suite dest apt_dir lists sources debver
	suite="$(suite_of "${version}")"
	dest="${cache_root}/containerd/${version}"
	if [[ -x ${dest}/usr/bin/containerd ]]; then
		echo "${dest}/usr/bin"
		return 0
	fi
	[[ ${EUID} -eq 0 ]] || die "must run as root the first time (apt-get update into a private dir)"
	[[ -r ${keyring} ]] || die "${keyring} missing (apt-get install debian-archive-keyring)"
	apt_dir="${cache_root}/apt/${suite}"
	lists="${apt_dir}/lists"
	sources="${apt_dir}/sources.list"
	mkdir -p "${lists}/partial" "${apt_dir}/cache/archives/partial" "${apt_dir}/empty"
	echo "deb [signed-by=${keyring}] $(mirror) ${suite} main" >"${sources}"
	local -a apt_opts=(
		-o "Dir::Etc::sourcelist=${sources}"
		-o "Dir::Etc::sourceparts=-"
		-o "Dir::State::lists=${lists}"
		-o "Dir::Cache=${apt_dir}/cache"
		-o "Dir::Etc::preferences=/dev/null"
		-o "Dir::Etc::preferencesparts=${apt_dir}/empty"
		-o "APT::Sandbox::User=root"
		-o "Acquire::Languages=none"
		-o "APT::Get::List-Cleanup=0"
	)
	log "apt-get update of ${suite} into ${apt_dir}"
	apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update of ${suite} failed"
	# The Debian version of upstream <version> (e.g. 2.1.9+ds1-5).
	debver="$(apt-cache "${apt_opts[@]}" madison containerd |
		awk -F'|' -v v="${version}" '{ gsub(/ /, "", $2) } index($2, v "~") == 1 || index($2, v "+") == 1 || index($2, v "-") == 1 { print $2; exit }')"
	[[ -n ${debver} ]] || die "${suite} has no containerd ${version} (it has: $(apt-cache "${apt_opts[@]}" madison containerd | awk -F'|' '{print $2}' | tr -d ' ' | tr '\n' ' '))"
	work="$(mktemp -d "${cache_root}/containerd/.fetch.XXXXXX")"
	log "apt-get download containerd=${debver}"
	(cd "${work}" && apt-get "${apt_opts[@]}" -qq download "containerd=${debver}" >&2) ||
		die "apt-get download containerd=${debver} failed"
	mkdir -p "${work}/root"
	dpkg-deb -x "${work}"/containerd_*.deb "${work}/root"
	[[ -x ${work}/root/usr/bin/containerd ]] || die "containerd ${debver}: no usr/bin/containerd in the package"
	echo "${debver}" >"${work}/root/debian-version"
	rm -rf "${dest}"
	mv "${work}/root" "${dest}"
	log "containerd ${debver} in ${dest}"
	echo "${dest}/usr/bin"
}

[[ $# -eq 1 ]] || die "usage: $0 <version>|system"
case "$1" in
system)
	c="$(command -v containerd)" || die "no system containerd (run hack/install-deps.sh)"
	dirname "$(readlink -f "${c}")"
	;;
*)
	mkdir -p "${cache_root}/containerd"
	fetch "$1"
	;;
esac
