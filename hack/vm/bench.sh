#!/usr/bin/env bash
# Runs inside the cgroup v2 test VM (hack/vm/guest.sh, when hack/vm/run.sh got
# ZYGOTE_VM_BENCH=N): N rounds of `ctr run --rm <busybox> /bin/true` through
# zygote, warm (profile "default" of hack/bench/zygote.toml) then cold
# (profile "cold", pool disabled), one at a time; the daemon's timings.jsonl
# (Create received -> exec, and where the create's time went: cgroup_us,
# devices_us, place_us) is copied to /mnt/out for hack/vm/run.sh to summarise.
#
# Usage (from guest.sh, with its environment): bench.sh <rounds> <ctr args...>
set -uo pipefail

rounds=$1
shift
ctr_=("$@")
image=${ZYGOTE_TEST_IMAGE:?}
# A short pause between rounds lets the pool refill (a claim spawns a
# replacement zygote; under TCG that takes a while).
pause=${VM_BENCH_PAUSE:-2}
echo "=== bench.sh: ${rounds} rounds, warm then cold, ${pause}s apart"
sleep 10 # the pool's initial zygotes (first task starts the daemon: see below)
fails=0
for i in $(seq "${rounds}"); do
	"${ctr_[@]}" run --rm --runtime io.containerd.zygote.v1 "${image}" "bench-warm-${i}" /bin/true || fails=$((fails + 1))
	sleep "${pause}"
	"${ctr_[@]}" run --rm --runtime io.containerd.zygote.v1 --annotation zygote.dev/profile=cold "${image}" \
		"bench-cold-${i}" /bin/true || fails=$((fails + 1))
	sleep "${pause}"
done
for f in "${ZYGOTE_STATE_DIR}"/*/timings.jsonl; do
	[[ -f ${f} ]] && cat "${f}" >>/mnt/out/timings.jsonl
done
echo "=== bench.sh: done, ${fails} runs failed"
[[ ${fails} -eq 0 ]]
