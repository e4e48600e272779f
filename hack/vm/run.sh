#!/usr/bin/env bash
# The cgroup-facing integration tests on a cgroup v2 kernel: boots Debian's
# kernel under QEMU (TCG: this host's KVM does not boot stock kernels) with
# cgroup v2 only and systemd as PID 1, shares the worktree (built binaries and
# test binaries), the test images and a results dir over 9p, runs
# hack/vm/guest.sh there (a private containerd, zygote and runc side by side,
# as hack/test.sh does on the host) and reports.
#
# Usage:
#   hack/vm/run.sh [TEST_NAME_FILTER...]
#       default filters: the tests that need v2 (VM_DEFAULT_TESTS below);
#       given filters select by substring, as cargo test does, in the test
#       binaries VM_TEST_TARGETS.
# Environment:
#   ZYGOTE_CACHE_DIR      cache (default /var/tmp/zygote-cache): the VM image
#                         (hack/vm/build.sh, <cache>/vm/<key>), the test images
#                         and the runs' logs (<cache>/vm-runs, five newest kept)
#   ZYGOTE_VM_TIMEOUT     seconds the VM may run in all (default 1500)
#   ZYGOTE_VM_BOOT_TIMEOUT  seconds until the guest's test unit must have
#                         started (default 400)
#   ZYGOTE_VM_MEM         guest memory in MiB (default 2048)
#   ZYGOTE_VM_CPUS        guest vCPUs (default 2)
#   ZYGOTE_VM_NUMA=0      one NUMA node (default 1: two nodes, half the vCPUs
#                         and memory each, for the placement tests)
#   ZYGOTE_TEST_RUNTIMES  as for hack/test.sh (default runc,zygote)
#   ZYGOTE_SKIP_BUILD=1   use target/release as it is (no cargo build)
#   ZYGOTE_VM_BENCH=N     instead of the tests, N rounds of warm then cold
#                         `ctr run --rm /bin/true` (hack/vm/bench.sh); prints
#                         the medians of the daemon's timings.jsonl
#   ZYGOTE_VM_BENCH_BIN_DIR  a directory under the cache holding another
#                         containerd-shim-zygote-v1 for the bench (a before/after)
# Ends with "N passed, M failed" (cargo test's summaries added up). Exit 0 only
# if the VM came up, every test binary ran and nothing failed. The VM is killed
# on every exit path.
set -euo pipefail

vm_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${vm_dir}/../.." && pwd)"
hack_dir="${repo_dir}/hack"
readonly CACHE_DIR="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}"
# Test binaries (tests/integration/tests/<name>.rs) and, by default, the tests
# run in them (substring filters, as cargo test takes them): the ones that
# touch cgroups (and warm_init_is_placed_without_a_migration: the v2 warm
# path's CLONE_INTO_CGROUP). Not here: the pool-cgroup tests of pools.rs
# (failed_claim_leaves_no_pool_cgroup, pool_cgroups_of_a_killed_daemon_are_swept,
# task_cannot_take_a_pool_cgroup, one_odd_cgroup_parent_does_not_move_the_pool),
# which test the v1 pre-placement of zygotes in pool cgroups renamed at claim:
# cgroup2 has no rename and the daemon does not pre-place on v2 (a claim
# clones the init into the task's cgroup instead); dropped_zygotes_do_not_linger, whose
# bursts must fit the pool's 10 s demand window (under TCG they take longer);
# the profile tests (profile_by_*), whose "locked" profile denies TCP connect
# with Landlock ABI 4, which bookworm's 6.1 kernel lacks (6.7+).
readonly VM_TEST_TARGETS=(basic pools bad_input wasm cgroup_files devices systemd_cgroup cgroupfs_view placement)
readonly VM_DEFAULT_TESTS=(
	pause_resume task_metrics task_ps kill_all update_resources memory_limit_oom cgroup_placement
	no_leftovers_after_rm leftover_detectors_see_a_live_container delete_kills_only_the_tasks_own_processes
	exit_codes failed_warm_create_leaves_no_pool_cgroup invalid_cgroup_path memory_limit_stops_a_memory_bomb
	spec_resources_in_cgroup_files default_rules_deny_made_nodes_and_allow_standard_devices
	spec_rules_in_order_last_match_wins rules_without_a_deny_all_start_from_deny
	warm_init_is_placed_without_a_migration
	systemd_cgroup_path_makes_a_transient_scope
	cgroup_mount block_io_and_hugepages_in_cgroup_files
	spread_on_this_machine_and_tasks_see_every_cpu two_fixture_nodes_narrow_zygotes_and_claims_widen_them
)

start=${SECONDS}
step() { echo "=== hack/vm/run.sh: $* ($((SECONDS - start))s)"; }
die() {
	echo "hack/vm/run.sh: error: $*" >&2
	exit 1
}
[[ ${EUID} -eq 0 ]] || die "must run as root"
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 not found (hack/install-deps.sh)"

filters=("$@")
[[ ${#filters[@]} -gt 0 ]] || filters=("${VM_DEFAULT_TESTS[@]}")

step "VM image (hack/vm/build.sh; cached)"
image_dir="$("${vm_dir}/build.sh")"
cat "${image_dir}/stamp"

cd "${repo_dir}"
if [[ ${ZYGOTE_SKIP_BUILD:-0} != 1 ]]; then
	# The same cargo flags as hack/test.sh's, so after the host suite this
	# builds nothing.
	step "building (cargo build/test --release --workspace --no-run)"
	cargo build --release --workspace
	cargo test --release --workspace --no-run
fi
# The test binaries' paths, from cargo (no build: everything is fresh). The
# bench runs none.
test_bins=()
[[ ${ZYGOTE_VM_BENCH:-0} -gt 0 ]] || mapfile -t test_bins < <(
	cargo test --release --workspace --no-run --message-format=json 2>/dev/null |
		jq -r --arg t "$(
			IFS=,
			echo "${VM_TEST_TARGETS[*]}"
		)" 'select(.reason == "compiler-artifact" and .profile.test and .target.kind == ["test"]
			and (.target.name as $n | $t | split(",") | index($n))) | .executable'
)
[[ ${ZYGOTE_VM_BENCH:-0} -gt 0 || ${#test_bins[@]} -eq ${#VM_TEST_TARGETS[@]} ]] || die "expected test binaries for ${VM_TEST_TARGETS[*]}, got: ${test_bins[*]:-none}"
"${hack_dir}/build-image.sh" "${CACHE_DIR}/image" >/dev/null
"${hack_dir}/build-wasm-image.sh" "${CACHE_DIR}/wasm-image" >/dev/null

mkdir -p "${CACHE_DIR}/vm-runs"
out="$(mktemp -d "${CACHE_DIR}/vm-runs/run.XXXXXX")"
find "${CACHE_DIR}/vm-runs" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +6 | cut -d' ' -f2- |
	xargs -r rm -rf --
rel_bins=()
for b in "${test_bins[@]}"; do rel_bins+=("${b#"${repo_dir}"/}"); done
cat >"${out}/params.env" <<EOF
VM_TESTS='${rel_bins[*]}'
VM_FILTERS='${filters[*]}'
VM_HOST_CACHE='${CACHE_DIR}'
ZYGOTE_TEST_RUNTIMES='${ZYGOTE_TEST_RUNTIMES:-runc,zygote}'
ZYGOTE_TEST_THREADS='${ZYGOTE_TEST_THREADS:-1}'
VM_BENCH='${ZYGOTE_VM_BENCH:-0}'
VM_BENCH_BIN_DIR='${ZYGOTE_VM_BENCH_BIN_DIR:-}'
CI='${CI:-}'
EOF

mem=${ZYGOTE_VM_MEM:-2048}
cpus=${ZYGOTE_VM_CPUS:-2}
numa=()
if [[ ${ZYGOTE_VM_NUMA:-1} == 1 ]]; then
	half=$((cpus / 2))
	[[ ${half} -ge 1 ]] || die "ZYGOTE_VM_NUMA=1 needs ZYGOTE_VM_CPUS >= 2"
	numa=(-object "memory-backend-ram,id=m0,size=$((mem / 2))M" -object "memory-backend-ram,id=m1,size=$((mem - mem / 2))M"
		-numa "node,nodeid=0,cpus=0-$((half - 1)),memdev=m0" -numa "node,nodeid=1,cpus=${half}-$((cpus - 1)),memdev=m1")
fi
serial="${out}/serial.log"
qemu_pid=""
kill_vm() {
	if [[ -n ${qemu_pid} ]] && kill -0 "${qemu_pid}" 2>/dev/null; then
		kill -TERM "${qemu_pid}" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "${qemu_pid}" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "${qemu_pid}" 2>/dev/null || true
	fi
	[[ -z ${qemu_pid} ]] || wait "${qemu_pid}" 2>/dev/null || true
	qemu_pid=""
}
trap kill_vm EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "booting the VM (TCG, ${cpus} vCPUs, ${mem} MiB$([[ ${#numa[@]} -eq 0 ]] || echo ', 2 NUMA nodes'); serial log ${serial})"
# The root disk is opened with snapshot=on: the guest's writes go to a
# temporary overlay that QEMU drops at exit, the cached image stays as built.
qemu-system-x86_64 -accel tcg -cpu max -smp "${cpus}" -m "${mem}" "${numa[@]}" \
	-machine q35 -display none -monitor none -no-reboot -nic none \
	-serial "file:${serial}" \
	-kernel "${image_dir}/vmlinuz" -initrd "${image_dir}/initrd.gz" \
	-append "console=ttyS0 root=/dev/vda rw panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.show_status=1" \
	-drive "file=${image_dir}/rootfs.img,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=${repo_dir},mount_tag=repo,security_model=none,readonly=on" \
	-virtfs "local,path=${CACHE_DIR},mount_tag=cache,security_model=none,readonly=on" \
	-virtfs "local,path=${out},mount_tag=out,security_model=passthrough" &
qemu_pid=$!

boot_timeout=${ZYGOTE_VM_BOOT_TIMEOUT:-400}
total_timeout=${ZYGOTE_VM_TIMEOUT:-1500}
t0=${SECONDS}
booted=0
while kill -0 "${qemu_pid}" 2>/dev/null; do
	if [[ ${booted} -eq 0 && -s ${out}/guest.log ]]; then
		booted=1
		step "guest up after $((SECONDS - t0))s, running the tests"
	fi
	if [[ ${booted} -eq 0 && $((SECONDS - t0)) -ge ${boot_timeout} ]]; then
		echo "hack/vm/run.sh: the VM did not start its tests within ${boot_timeout}s" >&2
		break
	fi
	if [[ $((SECONDS - t0)) -ge ${total_timeout} ]]; then
		echo "hack/vm/run.sh: the VM ran longer than ${total_timeout}s, killing it" >&2
		break
	fi
	sleep 2
done
kill_vm
step "VM ended after $((SECONDS - t0))s; logs in ${out}"

if [[ ${ZYGOTE_VM_BENCH:-0} -gt 0 ]]; then
	[[ -s ${out}/timings.jsonl ]] || die "the bench wrote no timings (logs in ${out})"
	# Medians per profile and path (a warm run that found the pool empty is "cold").
	jq -rs 'group_by([.profile, .path, .cloned_into_cgroup]) | .[] |
		def med(f): (map(f // 0) | sort) as $v | $v[($v | length) / 2 | floor];
		"\(.[0].profile) \(.[0].path) into_cgroup=\(.[0] | if has("cloned_into_cgroup") then .cloned_into_cgroup else "n/a" end) n=\(length): create_to_exec_us \(med(.create_to_exec_us)), create_to_ready_us \(med(.create_to_ready_us)), cgroup_us \(med(.cgroup_us)), devices_us \(med(.devices_us)), place_us \(med(.place_us))"' \
		"${out}/timings.jsonl"
	grep -q '^bench 0$' "${out}/results" 2>/dev/null || die "the bench failed (logs in ${out})"
	exit 0
fi
read -r passed failed < <(
	sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed;.*/\1 \2/p' "${out}/tests.log" 2>/dev/null |
		awk '{ p += $1; f += $2 } END { print p + 0, f + 0 }'
)
problems=()
[[ -s ${out}/guest.log ]] || problems+=("the VM did not come up (no guest.log)")
ran=$(wc -l 2>/dev/null <"${out}/results" || echo 0)
[[ ${ran} -eq ${#test_bins[@]} ]] || problems+=("${ran} of ${#test_bins[@]} test binaries finished")
bad_rc=$(awk '$2 != 0' "${out}/results" 2>/dev/null || true)
[[ -z ${bad_rc} ]] || problems+=("test binaries exited non-zero: ${bad_rc//$'\n'/; }")
mapfile -t failed_tests < <(sed -nE 's/^test (.*) \.\.\. FAILED$/\1/p' "${out}/tests.log" 2>/dev/null)
if [[ ${#problems[@]} -gt 0 || ${failed} -gt 0 ]]; then
	echo "--- last 40 lines of ${serial} ---"
	tail -n 40 "${serial}" 2>/dev/null || true
	echo "--- last 40 lines of ${out}/guest.log ---"
	tail -n 40 "${out}/guest.log" 2>/dev/null || true
	printf 'hack/vm/run.sh: %s\n' "${problems[@]}" >&2
	[[ ${#failed_tests[@]} -eq 0 ]] || printf 'failed: %s\n' "${failed_tests[@]}"
fi
echo "${passed} passed, ${failed} failed"
[[ ${#problems[@]} -eq 0 && ${failed} -eq 0 ]]
