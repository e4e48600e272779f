#!/usr/bin/env bash
# A private containerd for the integration tests.
#
# Usage:
#   hack/containerd.sh start   <dir>   start containerd with everything under <dir>
#   hack/containerd.sh stop    <dir>   kill all tasks, stop containerd, the zygote
#                                      daemon(s) and shims, unmount and remove <dir>
#   hack/containerd.sh restart <dir>   stop containerd only (SIGTERM) and start it
#                                      again with the same dirs (tasks survive)
#   hack/containerd.sh env     <dir>   print the env vars the tests use
#
# Layout of <dir> (must be on a real filesystem such as ext4, not tmpfs, for the
# overlayfs snapshotter):
#   config.toml  containerd.sock  containerd.sock.ttrpc  containerd.log
#   containerd.pid  root/  state/  opt/  zygote/ (ZYGOTE_STATE_DIR)
#
# Environment:
#   ZYGOTE_BIN_DIR    where containerd-shim-zygote-v1 is (default <repo>/target/release);
#                     prepended to containerd's PATH so containerd finds the shim.
#   ZYGOTE_STATE_DIR  state dir of the zygote daemon (default <dir>/zygote).
#   CONTAINERD_START_TIMEOUT  seconds to wait for containerd to answer (default 20).
#   ZYGOTE_CONTAINERD_LOG_LEVEL  containerd's log level (default info; debug to chase a hang).
#   ZYGOTE_CRI=1      also enable containerd's CRI plugin (write_cri_config):
#                     same socket, namespace k8s.io, handlers runc, crun (runc-v2
#                     driving /usr/bin/crun, for hack/bench), zygote and
#                     zygote-alt (zygote with runtime options selecting profile
#                     ZYGOTE_CRI_ALT_PROFILE, default "open"), zygote-badopts
#                     (runtime options naming profile "no-such-profile-badopts",
#                     which no config has: a handler that must fail clearly),
#                     CNI bridge+portmap
#                     (loopback added by containerd) from /usr/lib/cni on a
#                     private bridge and subnet (<dir>/cri.env), and a local pause
#                     image (hack/build-pause-image.sh) imported into k8s.io.
#                     Default: ctr only (CRI disabled).
#   ZYGOTE_CACHE_DIR  where the pause image is built (default /var/tmp/zygote-cache).
#   CONTAINERD_BIN_DIR  where containerd, ctr and containerd-shim-runc-v2 are
#                     (default: the system's, from PATH); e.g. the output of
#                     hack/containerd-versions.sh 2.1.9. Prepended to PATH, so
#                     the system's runc stays in use. containerd 2.x gets a
#                     `version = 3` config, 1.x `version = 2`.
set -euo pipefail

if [[ -n ${CONTAINERD_BIN_DIR:-} ]]; then
	[[ -x ${CONTAINERD_BIN_DIR}/containerd ]] || {
		echo "containerd.sh: error: no containerd in CONTAINERD_BIN_DIR=${CONTAINERD_BIN_DIR}" >&2
		exit 1
	}
	export PATH="${CONTAINERD_BIN_DIR}:${PATH}"
fi

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${hack_dir}/.." && pwd)"
ZYGOTE_BIN_DIR="${ZYGOTE_BIN_DIR:-${repo_dir}/target/release}"

log() {
	echo "containerd.sh: $*" >&2
}

die() {
	echo "containerd.sh: error: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 {start|stop|restart|env} <dir>" >&2
	exit 2
}

# --- helpers -----------------------------------------------------------------

pid_alive() {
	local pid="$1"
	[[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null
}

# wait_pid_gone <pid> <timeout-seconds>; returns non-zero if still alive.
wait_pid_gone() {
	local pid="$1" timeout="$2" i
	for ((i = 0; i < timeout * 10; i++)); do
		pid_alive "${pid}" || return 0
		# A zombie child of ours counts as gone.
		if [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null || true)" == Z ]]; then
			return 0
		fi
		sleep 0.1
	done
	! pid_alive "${pid}"
}

# term_then_kill <pid> <what>
term_then_kill() {
	local pid="$1" what="$2"
	pid_alive "${pid}" || return 0
	kill -TERM "${pid}" 2>/dev/null || true
	if ! wait_pid_gone "${pid}" 10; then
		log "${what} (pid ${pid}) did not exit after SIGTERM, sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
		wait_pid_gone "${pid}" 5 || log "${what} (pid ${pid}) still alive after SIGKILL"
	fi
}

ctr_cmd() {
	timeout 30 ctr --address "${dir}/containerd.sock" "$@"
}

containerd_pid() {
	local pid=""
	if [[ -f ${dir}/containerd.pid ]]; then
		pid="$(cat "${dir}/containerd.pid")"
	fi
	if pid_alive "${pid}" && tr '\0' ' ' 2>/dev/null <"/proc/${pid}/cmdline" | grep -q -- "${dir}/config.toml"; then
		echo "${pid}"
	fi
}

# The major version of the containerd on PATH ("1" or "2").
containerd_major() {
	local v
	# "containerd github.com/containerd/containerd/v2 2.1.9+unknown <commit>"
	v="$(containerd --version | awk '{ print $3 }')"
	v="${v#v}"
	echo "${v%%.*}"
}

write_config() {
	# containerd 2.x reads version 3 (it would migrate 2 at every start);
	# the rest of this config means the same under both.
	local config_version=2 extra_disabled=""
	if [[ "$(containerd_major)" -ge 2 ]]; then
		config_version=3
		extra_disabled='
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.grpc.v1.sandbox-controllers",'
	fi
	cat >"${dir}/config.toml" <<EOF
# Generated by hack/containerd.sh: private containerd for zygote tests.
version = ${config_version}
root = "${dir}/root"
state = "${dir}/state"
oom_score = 0
disabled_plugins = [${extra_disabled}
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "${ZYGOTE_CONTAINERD_LOG_LEVEL:-info}"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${dir}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
  [plugins."io.containerd.service.v1.diff-service"]
    default = ["walking"]
EOF
}

start_containerd() {
	command -v containerd >/dev/null 2>&1 || die "containerd not found (run hack/install-deps.sh)"
	command -v ctr >/dev/null 2>&1 || die "ctr not found (run hack/install-deps.sh)"
	local fstype
	mkdir -p "${dir}"
	# Traversable, as /var/lib/containerd and /run/containerd are on a node
	# (mktemp makes 0700): the root of a container in a user namespace is an
	# unprivileged host uid that must reach its bundle's rootfs.
	chmod 711 "${dir}"
	fstype="$(stat -f -c %T "${dir}")"
	if [[ ${fstype} == tmpfs ]]; then
		die "${dir} is on tmpfs; the overlayfs snapshotter needs e.g. ext4 (use /var/tmp)"
	fi
	local existing
	existing="$(containerd_pid)"
	[[ -z ${existing} ]] || die "containerd already running for ${dir} (pid ${existing})"

	mkdir -p "${dir}/root" "${dir}/state" "${dir}/opt" "${ZYGOTE_STATE_DIR}"
	write_config
	if [[ ${ZYGOTE_CRI:-0} == 1 ]]; then
		write_cri_config
	fi
	if [[ ! -x ${ZYGOTE_BIN_DIR}/containerd-shim-zygote-v1 ]]; then
		log "warning: ${ZYGOTE_BIN_DIR}/containerd-shim-zygote-v1 does not exist; the zygote runtime will not work"
	fi
	# zygotectl is built beside the shim; it finds this containerd's daemon
	# from the same address and state dir.
	log "zygotectl: ${ZYGOTE_BIN_DIR}/zygotectl --address ${dir}/containerd.sock --state-dir ${ZYGOTE_STATE_DIR} status"

	log "starting containerd in ${dir} (shim dir ${ZYGOTE_BIN_DIR})"
	# setsid: own session so that signals to the caller's process group
	# (Ctrl-C, test harness) do not reach containerd and its shims.
	PATH="${ZYGOTE_BIN_DIR}:${PATH}" ZYGOTE_STATE_DIR="${ZYGOTE_STATE_DIR}" \
		setsid containerd --config "${dir}/config.toml" \
		</dev/null >>"${dir}/containerd.log" 2>&1 &
	local pid=$!
	echo "${pid}" >"${dir}/containerd.pid"

	local timeout="${CONTAINERD_START_TIMEOUT:-20}" i
	for ((i = 0; i < timeout * 10; i++)); do
		if ! pid_alive "${pid}"; then
			cat "${dir}/containerd.log" >&2 || true
			die "containerd exited during startup (log above: ${dir}/containerd.log)"
		fi
		if [[ -S ${dir}/containerd.sock ]] &&
			timeout 5 ctr --address "${dir}/containerd.sock" version >/dev/null 2>&1; then
			log "containerd is up (pid ${pid}, address ${dir}/containerd.sock)"
			if [[ -f ${dir}/cri.env ]] && ! import_pause_image; then
				cmd_stop
				die "CRI set-up failed; containerd stopped"
			fi
			return 0
		fi
		sleep 0.1
	done
	cat "${dir}/containerd.log" >&2 || true
	kill -KILL "${pid}" 2>/dev/null || true
	die "containerd did not answer within ${timeout}s (log above: ${dir}/containerd.log)"
}

stop_containerd_only() {
	local pid
	pid="$(containerd_pid)"
	if [[ -n ${pid} ]]; then
		log "stopping containerd (pid ${pid})"
		term_then_kill "${pid}" containerd
	fi
	rm -f "${dir}/containerd.pid"
}

# Namespaces seen by kill_all_tasks (their /sys/fs/cgroup/*/<ns> parents are
# removed at the end of stop when empty).
declare -a namespaces=()

kill_all_tasks() {
	local ns ids id
	mapfile -t namespaces < <(ctr_cmd namespaces ls -q 2>/dev/null || true)
	for ns in "${namespaces[@]}"; do
		[[ -n ${ns} ]] || continue
		mapfile -t ids < <(ctr_cmd -n "${ns}" tasks ls -q 2>/dev/null || true)
		for id in "${ids[@]}"; do
			[[ -n ${id} ]] || continue
			ctr_cmd -n "${ns}" tasks resume "${id}" >/dev/null 2>&1 || true
			ctr_cmd -n "${ns}" tasks kill -a -s KILL "${id}" >/dev/null 2>&1 || true
		done
		for id in "${ids[@]}"; do
			[[ -n ${id} ]] || continue
			local _try
			for _try in 1 2 3 4 5 6 7 8 9 10; do
				ctr_cmd -n "${ns}" tasks delete -f "${id}" >/dev/null 2>&1 && break
				ctr_cmd -n "${ns}" tasks ls -q 2>/dev/null | grep -qxF -- "${id}" || break
				sleep 0.2
			done
		done
		mapfile -t ids < <(ctr_cmd -n "${ns}" containers ls -q 2>/dev/null || true)
		for id in "${ids[@]}"; do
			[[ -n ${id} ]] || continue
			ctr_cmd -n "${ns}" containers delete "${id}" >/dev/null 2>&1 || true
		done
	done
}

kill_zygote_daemons() {
	local f pid
	[[ -d ${ZYGOTE_STATE_DIR} ]] || return 0
	shopt -s nullglob
	for f in "${ZYGOTE_STATE_DIR}"/*/daemon.pid; do
		pid="$(tr -dc '0-9' 2>/dev/null <"${f}" || true)"
		if pid_alive "${pid}"; then
			log "stopping zygote daemon (pid ${pid}, ${f})"
			term_then_kill "${pid}" "zygote daemon"
		fi
	done
	shopt -u nullglob
}

# Any process whose command line mentions <dir>: leftover shims
# (containerd-shim-* -address <dir>/containerd.sock), zygote daemons etc.
kill_leftover_processes() {
	local p cmdline exe
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} != "$$" ]] || continue
		cmdline="$(tr '\0' ' ' 2>/dev/null <"${p}/cmdline" || true)"
		[[ -n ${cmdline} ]] || continue
		exe="$(basename "$(readlink "${p}/exe" 2>/dev/null || true)")"
		if [[ ${cmdline} == *"${dir}"* ]] && { [[ ${exe} == containerd-shim* || ${exe} == zygote* || ${cmdline} == *containerd-shim* ]]; }; then
			log "killing leftover process ${p#/proc/}: ${cmdline}"
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
}

unmount_all_under() {
	local mp i
	local -a mps
	for i in 1 2 3; do
		# Field 5 of mountinfo is the mount point (octal escapes for spaces).
		mapfile -t mps < <(awk -v d="${dir}" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
			awk '{ print gsub("/", "/"), $0 }' | sort -rn -k1,1 | cut -d' ' -f2-)
		[[ ${#mps[@]} -gt 0 ]] || return 0
		for mp in "${mps[@]}"; do
			mp="$(printf '%b' "${mp}")"
			umount "${mp}" 2>/dev/null || umount -l "${mp}" 2>/dev/null || log "failed to unmount ${mp}"
		done
	done
}

# Containers whose shim is gone (containerd or the shim was killed) keep
# running.  Find them through the task bundles left in <dir>/state and kill
# everything in their cgroups; remove runc's state for them.
kill_orphaned_containers() {
	local bundle ns id cg root procs pid i
	local -a cgdirs
	shopt -s nullglob
	for bundle in "${dir}"/state/io.containerd.runtime.v2.task/*/*; do
		[[ -d ${bundle} ]] || continue
		id="${bundle##*/}"
		ns="$(basename "$(dirname "${bundle}")")"
		namespaces+=("${ns}")
		if [[ -d /run/containerd/runc/${ns}/${id} ]] && command -v runc >/dev/null 2>&1; then
			runc --root "/run/containerd/runc/${ns}" delete -f "${id}" >/dev/null 2>&1 || true
		fi
		cg=""
		if [[ -f ${bundle}/config.json ]] && command -v jq >/dev/null 2>&1; then
			cg="$(jq -r '.linux.cgroupsPath // empty' "${bundle}/config.json" 2>/dev/null || true)"
		fi
		# Only plain cgroupfs paths (not systemd's slice:prefix:name form).
		[[ ${cg} == /* && ${cg} != *..* ]] || continue
		cgdirs=()
		for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
			[[ -d ${root%/}${cg} ]] && cgdirs+=("${root%/}${cg}")
		done
		[[ ${#cgdirs[@]} -gt 0 ]] || continue
		log "killing processes left in cgroup ${cg} (task ${ns}/${id})"
		for i in "${cgdirs[@]}"; do
			# A frozen (paused) cgroup would keep SIGKILL pending: thaw it.
			if [[ -f ${i}/freezer.state ]]; then
				echo THAWED 2>/dev/null >"${i}/freezer.state" || true
			fi
			if [[ -f ${i}/cgroup.freeze ]]; then
				echo 0 2>/dev/null >"${i}/cgroup.freeze" || true
			fi
		done
		for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			procs=0
			for i in "${cgdirs[@]}"; do
				[[ -f ${i}/cgroup.procs ]] || continue
				while read -r pid; do
					procs=1
					kill -KILL "${pid}" 2>/dev/null || true
				done 2>/dev/null <"${i}/cgroup.procs"
			done
			[[ ${procs} -eq 1 ]] || break
			sleep 0.1
		done
		for i in "${cgdirs[@]}"; do
			rmdir "${i}" 2>/dev/null || true
		done
	done
	shopt -u nullglob
}

# ctr puts containers in the cgroup /<namespace>/<id>; the runtimes remove the
# leaf, the /<namespace> parent stays.  Remove it when it is empty.
remove_namespace_cgroups() {
	local ns c
	for ns in "${namespaces[@]}"; do
		[[ -n ${ns} && ${ns} != */* && ${ns} != . && ${ns} != .. ]] || continue
		for c in /sys/fs/cgroup/*/"${ns}" /sys/fs/cgroup/"${ns}"; do
			[[ -d ${c} ]] || continue
			rmdir "${c}" 2>/dev/null || true
		done
	done
}

cmd_stop() {
	if [[ ! -d ${dir} ]]; then
		log "${dir} does not exist, nothing to stop"
		return 0
	fi
	if [[ -n "$(containerd_pid)" ]]; then
		kill_all_tasks
	fi
	stop_containerd_only
	kill_zygote_daemons
	kill_leftover_processes
	kill_orphaned_containers
	cleanup_cri
	unmount_all_under
	remove_namespace_cgroups
	# Never remove something that is not ours.
	if [[ -f ${dir}/config.toml ]] || [[ -z "$(ls -A "${dir}")" ]] || [[ -d ${dir}/root ]]; then
		rm -rf --one-file-system "${dir}" || {
			unmount_all_under
			rm -rf --one-file-system "${dir}"
		}
		log "removed ${dir}"
	else
		log "not removing ${dir}: does not look like a containerd.sh dir"
	fi
}

cmd_env() {
	echo "ZYGOTE_TEST_CONTAINERD_DIR=${dir}"
	echo "ZYGOTE_TEST_ADDRESS=${dir}/containerd.sock"
	echo "ZYGOTE_STATE_DIR=${ZYGOTE_STATE_DIR}"
	echo "ZYGOTE_HACK_DIR=${hack_dir}"
	echo "ZYGOTE_BIN_DIR=${ZYGOTE_BIN_DIR}"
}

# --- CRI ---------------------------------------------------------------------

# The CRI plugin's settings, added to the config write_config wrote
# (containerd 1.6/1.7 `version = 2`, or 2.x `version = 3`, see below): the plugin is taken out of
# disabled_plugins, its top-level keys go under its table (after
# disable_tcp_service), its sub-tables are appended. Its own root and state
# are <dir>/root/io.containerd.grpc.v1.cri and <dir>/state/io.containerd.grpc.v1.cri.
write_cri_config() {
	local cache="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}" sum subnet bridge
	"${hack_dir}/build-pause-image.sh" "${cache}/pause-image" >&2
	# shellcheck disable=SC1091
	source "${cache}/pause-image/image.env"
	# Private bridge name (at most 15 bytes) and /24 subnet, from the dir.
	sum="$(printf '%s' "${dir}" | cksum | cut -d' ' -f1)"
	bridge="zcri$(printf '%08x' "${sum}")"
	subnet="10.$((200 + sum % 50)).$(((sum / 50) % 256)).0/24"
	mkdir -p "${dir}/cni/net.d" "${dir}/cni/ipam"
	cat >"${dir}/cni/net.d/10-zygote.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "zygote-cri",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${bridge}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${dir}/cni/ipam",
        "ranges": [[{ "subnet": "${subnet}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CONF
	printf 'profile = "%s"\n' "${ZYGOTE_CRI_ALT_PROFILE:-open}" >"${dir}/zygote-alt.toml"
	printf 'profile = "no-such-profile-badopts"\n' >"${dir}/zygote-badopts.toml"
	# containerd 1.x (config version 2): one plugin, io.containerd.grpc.v1.cri,
	# holds it all. containerd 2.x (version 3): the runtime side is
	# io.containerd.cri.v1.runtime, images (and the sandbox image) are
	# io.containerd.cri.v1.images; the grpc plugin keeps the streaming server.
	local top runtime images=""
	if [[ "$(containerd_major)" -ge 2 ]]; then
		top="    stream_server_address = \"127.0.0.1\"
    stream_server_port = \"0\""
		runtime='plugins."io.containerd.cri.v1.runtime"'
		images="  [plugins.\"io.containerd.cri.v1.images\"]
    snapshotter = \"overlayfs\"
  [plugins.\"io.containerd.cri.v1.images\".pinned_images]
    sandbox = \"${PAUSE_IMAGE_REF}\"
  [${runtime}]
    disable_apparmor = true
    enable_selinux = false
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true"
	else
		top="    sandbox_image = \"${PAUSE_IMAGE_REF}\"
    disable_apparmor = true
    stream_server_address = \"127.0.0.1\"
    stream_server_port = \"0\"
    enable_selinux = false
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true"
		runtime='plugins."io.containerd.grpc.v1.cri"'
	fi
	# Take every CRI plugin out of disabled_plugins; add the top-level keys
	# under the grpc plugin's table.
	TOP="${top}" awk '
		$0 ~ /^  "io\.containerd\.(grpc\.v1\.cri|cri\.v1\.images|cri\.v1\.runtime|podsandbox\.controller\.v1\.podsandbox|grpc\.v1\.sandbox-controllers)",$/ { next }
		{ print }
		$0 == "    disable_tcp_service = true" { print ENVIRON["TOP"]; added = 1 }
		END { exit !added }
	' "${dir}/config.toml" >"${dir}/config.toml.new" || die "no CRI table in ${dir}/config.toml to add to"
	mv -f "${dir}/config.toml.new" "${dir}/config.toml"
	local rt="${runtime}.containerd.runtimes"
	[[ -z ${images} ]] || printf '%s\n' "${images}" >>"${dir}/config.toml"
	cat >>"${dir}/config.toml" <<CONF
  [${runtime}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [${rt}.runc]
    runtime_type = "io.containerd.runc.v2"
  [${rt}.crun]
    runtime_type = "io.containerd.runc.v2"
  [${rt}.crun.options]
    BinaryName = "/usr/bin/crun"
  [${rt}.zygote]
    runtime_type = "io.containerd.zygote.v1"
    pod_annotations = ["zygote.dev/*"]
  [${rt}.zygote-alt]
    runtime_type = "io.containerd.zygote.v1"
    pod_annotations = ["zygote.dev/*"]
  [${rt}.zygote-alt.options]
    ConfigPath = "${dir}/zygote-alt.toml"
  [${rt}.zygote-badopts]
    runtime_type = "io.containerd.zygote.v1"
  [${rt}.zygote-badopts.options]
    ConfigPath = "${dir}/zygote-badopts.toml"
  [${runtime}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni/net.d"
    max_conf_num = 1
CONF
	cat >"${dir}/cri.env" <<CONF
CRI_BRIDGE=${bridge}
CRI_SUBNET=${subnet}
PAUSE_IMAGE_REF=${PAUSE_IMAGE_REF}
PAUSE_IMAGE_BASE_NAME=${PAUSE_IMAGE_BASE_NAME}
PAUSE_IMAGE_TAR=${PAUSE_IMAGE_TAR}
CONF
}

import_pause_image() {
	# shellcheck disable=SC1091
	source "${dir}/cri.env"
	local images
	if ! ctr_cmd -n k8s.io images import --base-name "${PAUSE_IMAGE_BASE_NAME}" "${PAUSE_IMAGE_TAR}" >&2; then
		log "error: importing the pause image ${PAUSE_IMAGE_TAR} failed"
		return 1
	fi
	# Not `ctr ... | grep -q` (grep's early exit would fail the pipe).
	images="$(ctr_cmd -n k8s.io images ls -q)" || return 1
	if ! grep -qxF "${PAUSE_IMAGE_REF}" <<<"${images}"; then
		log "error: pause image ${PAUSE_IMAGE_REF} not in namespace k8s.io after import"
		return 1
	fi
	log "CRI enabled: pause image ${PAUSE_IMAGE_REF}, bridge ${CRI_BRIDGE}, subnet ${CRI_SUBNET}"
}

# The private bridge (pods' network namespaces are mounted under
# <dir>/state, netns_mounts_under_state_dir, and unmounted with the rest).
cleanup_cri() {
	[[ -f ${dir}/cri.env ]] || return 0
	# shellcheck disable=SC1091
	source "${dir}/cri.env"
	if ip link show "${CRI_BRIDGE}" >/dev/null 2>&1; then
		ip link del "${CRI_BRIDGE}" 2>/dev/null || log "failed to delete bridge ${CRI_BRIDGE}"
	fi
}

# --- main ----------------------------------------------------------------------

[[ $# -eq 2 ]] || usage
action="$1"
dir="$2"
[[ -n ${dir} && ${dir} != / ]] || die "refusing to use '${dir}' as containerd dir"
mkdir -p "$(dirname "${dir}")"
dir="$(readlink -m "${dir}")"
ZYGOTE_STATE_DIR="${ZYGOTE_STATE_DIR:-${dir}/zygote}"

case "${action}" in
start)
	[[ ${EUID} -eq 0 ]] || die "must run as root"
	start_containerd
	;;
stop)
	[[ ${EUID} -eq 0 ]] || die "must run as root"
	cmd_stop
	;;
restart)
	[[ ${EUID} -eq 0 ]] || die "must run as root"
	[[ -f ${dir}/config.toml ]] || die "${dir} has no config.toml; start it first"
	stop_containerd_only
	start_containerd
	;;
env)
	cmd_env
	;;
*)
	usage
	;;
esac
