#!/usr/bin/env bash
# A node partitioned for 45 s mid-job, on a real two-node SLURM whose nodes are network namespaces
# (../shared/tools/slurm-netns-cluster.sh; stopped again at the end). Needs root and the release build:
#
#   make build && sudo cluster/test-slurm-partition.sh
#
# n1 runs the coordinator and one worker, n2 one worker. n2's link goes down for 45 s while they
# train: the coordinator declares n2's worker dead after --worker-timeout and goes on with n1's; the
# partition is shorter than SLURM's SlurmdTimeout, so SLURM keeps the job; when the link comes back,
# n2's worker is told it was left out and exits; the job finishes (with the survivor) and its
# checkpoint loads.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TOOLS=${SLURM_TOOLS:-$REPO/../shared/tools}
BIN=$REPO/.build/release
CLUSTER=$TOOLS/slurm-netns-cluster.sh
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[test-slurm-partition] $*" >&2; }
[ "$(id -u)" = 0 ] || fail "run as root (SLURM daemons and namespaces are made by this test)"
[ -x "$BIN/swiftrain" ] && [ -x "$BIN/swiftrain-worker" ] || fail "build first: swift build -c release"

WORK=$(mktemp -d /tmp/swiftrain-partition.XXXXXX)
chmod 755 "$WORK"
# A job cancelled while its node was cut off can leave a slurmstepd in that node's namespace, which
# keeps the namespace's veth alive after `down` (the next `up` then fails with "File exists").
purge() {
    bash "$CLUSTER" down >/dev/null 2>&1 || true
    local init p; init=$(readlink /proc/self/ns/net)  # this script runs outside the nodes' namespaces
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" != "$init" ] || continue
        grep -qaE 'slurmstepd|swiftrain' "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null || true
    done
    sleep 1
    for p in $(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(vsn[0-9]*\)@.*/\1/p'); do ip link del "$p" 2>/dev/null || true; done
    for p in $(ip netns list 2>/dev/null | awk '/^sln-/ {print $1}'); do ip netns del "$p" 2>/dev/null || true; done
}
cleanup() {
    bash "$CLUSTER" heal n2 >/dev/null 2>&1 || true
    local jobs; jobs=$(squeue -h -o %i -n swiftrain 2>/dev/null || true)
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
    purge
    rm -rf "$WORK"
}
trap cleanup EXIT
purge  # leftovers of an interrupted run
bash "$CLUSTER" up 2 >/dev/null
export SLURM_CONF=/etc/slurm-netns/slurm.conf

bash "$REPO/cluster/tiny-run.sh" "$BIN" "$WORK" 60

# run_case NAME [SBATCH FLAGS]: 60 epochs of the tiny model (two to six minutes by CPU, longer than the
# partition), n2 partitioned for 45 s once 20 steps are done; waits for the job to leave the queue.
run_case() {
    local name=$1; shift
    local id deadline
    id=$(sbatch --parsable --nodes=2 --ntasks-per-node=2 --ntasks=3 --cpus-per-task=1 --time=10 "$@" \
        --chdir="$WORK" --output="$WORK/$name.log" \
        --export=ALL,CONFIG="$WORK/tiny.yaml",RUN="$WORK/$name",SWIFTRAIN_BIN="$BIN",TRAIN_ARGS="--worker-timeout 10"${EXPORT:-} \
        "$REPO/cluster/train.sbatch")
    log "$name: job $id submitted"
    deadline=$(( $(date +%s) + 180 ))
    until grep -q "2 live" "$WORK/$name.log" 2>/dev/null \
        && [ "$(grep -c '"kind":"step"' "$WORK/$name/metrics.jsonl" 2>/dev/null || echo 0)" -ge 20 ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/$name.log" >&2; fail "$name: no training with 2 workers"; }
        sleep 0.5
    done
    log "$name: training with 2 workers; partitioning n2 for 45 s"
    bash "$CLUSTER" partition n2 >/dev/null
    sleep 45
    bash "$CLUSTER" heal n2 >/dev/null
    # Wait for the job to leave the queue while it makes progress: how long the rest of the run takes
    # depends on the CPU (a slow one needed more than 400 s for the requeued job's 50 epochs), so the
    # watchdog is a stall of 300 s without a new line in the job's log (SLURM's requeue waits for n2 to
    # register again), and 1500 s in all.
    local last="" now seen lines
    seen=$(date +%s); deadline=$(( seen + 1500 ))
    while squeue -h -j "$id" 2>/dev/null | grep -q .; do
        now=$(date +%s)
        lines=$(wc -l < "$WORK/$name.log" 2>/dev/null || echo 0)
        [ "$lines" = "$last" ] || { last=$lines; seen=$now; }
        if [ $(( now - seen )) -ge 300 ] || [ "$now" -ge "$deadline" ]; then
            cat "$WORK/$name.log" >&2
            scontrol show job "$id" >&2 || true
            sinfo -N -l >&2 || true
            fail "$name: job $id still queued $(( now - deadline + 1500 )) s after the heal," \
                "its log silent for $(( now - seen )) s (SLURM's view of the job and nodes above)"
        fi
        sleep 1
    done
    grep -E "declared dead|told to leave|left out|live$|finished|resuming|requeue|error" "$WORK/$name.log" >&2 || true
    [ -f "$WORK/$name/finished.json" ] || fail "$name: no finished.json: the run did not finish"
    grep -q "declared dead" "$WORK/$name.log" || fail "$name: n2's worker was never declared dead"
    "$BIN/swiftrain" checkpoint "$WORK/$name" >/dev/null || fail "$name: the checkpoint does not load"
}

# Default: SLURM takes n2 for failed, cancels the job and requeues it; the requeued job resumes from
# the last checkpoint and finishes.
if [ "${CASES:-all}" != nokill ]; then
    run_case default
    grep -q "resuming from" "$WORK/default.log" || fail "default: the job was not requeued and resumed"
fi
# --no-kill: the job keeps its allocation; the coordinator goes on with the survivor and finishes
# in the same job.
EXPORT=,NO_KILL=1 run_case nokill --no-kill
grep -q "told to leave" "$WORK/nokill.log" || fail "nokill: n2's worker was not told to leave after the heal"
grep -q "resuming from" "$WORK/nokill.log" && fail "nokill: the job was requeued although --no-kill"
log "passed: default → requeued and resumed; --no-kill → finished with the survivor"
