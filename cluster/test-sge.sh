#!/usr/bin/env bash
# Tests cluster/train.sge on a real single-node Grid Engine (Debian's gridengine, brought up by tools/sge-up.sh
# and stopped again at the end) with Debian's Open MPI. Needs root and the release build:
#
#   make build && sudo cluster/test-sge.sh
#
# 1. A 4-slot parallel job (1 coordinator + 3 workers under mpirun) trains a tiny configuration to the end.
# 2. SIGUSR1 to the job mid-training (what Grid Engine sends at the s_rt soft limit): the coordinator
#    checkpoints, the script exits 99, Grid Engine requeues the job, and it resumes to the same result.
# 3. qdel mid-training (-notify: SIGUSR2 10 s before the kill): it checkpoints; qsub again with the same RUN
#    resumes and ends where the uninterrupted run does.
# "The same result": the final step and validation loss of finished.json equal the uninterrupted run's.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/.build/release
WAIT=${SGE_TEST_TIMEOUT:-300}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[test-sge] $*" >&2; }
[ "$(id -u)" = 0 ] || fail "run as root (the Grid Engine daemons are started and stopped by this test)"
[ -x "$BIN/swiftrain" ] || fail "build first: swift build -c release"
command -v mpirun.openmpi >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null

WORK=$(mktemp -d /tmp/swiftrain-sge.XXXXXX)
cleanup() { bash "$REPO/tools/sge-down.sh" || true; [ -n "${SGE_TEST_KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
T0=$(date +%s)
bash "$REPO/tools/sge-up.sh"
log "Grid Engine up in $(( $(date +%s) - T0 ))s"

bash "$REPO/cluster/tiny-run.sh" "$BIN" "$WORK" 3

# submit NAME: qsub from the checkout (the script runs cluster/mpi-job.sh from there); prints the job id.
submit() {
    qsub -terse -pe mpi 4 -o "$WORK/$1.log" \
        -v CONFIG="$WORK/tiny.yaml",RUN="$WORK/$1",SWIFTRAIN_BIN="$BIN",MPIRUN=mpirun.openmpi \
        -v MPIRUN_ARGS="--allow-run-as-root --bind-to none --mca odls_base_sigkill_timeout 30",TRAIN_ARGS="--blas-threads 1 --progress-every 0" \
        cluster/train.sge
}
# wait_gone ID NAME: until Grid Engine has forgotten the job (requeues included), bounded.
wait_gone() {
    local deadline=$(( $(date +%s) + WAIT ))
    while qstat -j "$1" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/$2.log" >&2; qstat -j "$1" >&2; fail "job $1 ($2) still there after ${WAIT}s"; }
        sleep 0.5
    done
}
wait_steps() {  # wait_steps NAME K
    local deadline=$(( $(date +%s) + WAIT )) n
    until n=$(grep -c '"kind":"step"' "$WORK/$1/metrics.jsonl" 2>/dev/null || true); [ "${n:-0}" -ge "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/$1.log" >&2; fail "$1: fewer than $2 steps after ${WAIT}s"; }
        sleep 0.2
    done
}
result() { sed -n 's/.*"global_step":\([0-9]*\).*"val_loss":\([^,}]*\).*/step \1 val_loss \2/p' "$WORK/$1/finished.json"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# 1. A whole run.
t=$(date +%s); id=$(submit full); wait_gone "$id" full; T_FULL=$(elapsed "$t")
[ -f "$WORK/full/finished.json" ] || { cat "$WORK/full.log" >&2; fail "full: no finished.json"; }
grep -q "Open MPI: rank 0 of 4" "$WORK/full.log" || fail "full: rank 0 did not find Open MPI's environment"
grep -q "3 live" "$WORK/full.log" || fail "full: 3 workers never joined"
FULL=$(result full)
log "full run: $FULL, submit → done ${T_FULL}s"

# 2. SIGUSR1 to the job (as at s_rt): checkpoint, exit 99, requeued by Grid Engine, resumed.
t=$(date +%s); id=$(submit requeued); wait_steps requeued 20
script=$(pgrep -f "cluster/mpi-job.sh" | head -n1)
[ -n "$script" ] || fail "requeued: the job script is not running"
kill -USR1 "$script"
wait_gone "$id" requeued; T_REQ=$(elapsed "$t")
grep -q "exit 99 asks the scheduler to requeue job $id" "$WORK/requeued.log" || { cat "$WORK/requeued.log" >&2; fail "requeued: no checkpoint-and-requeue"; }
grep -q "resuming from $WORK/requeued/checkpoints/last.ckpt" "$WORK/requeued.log" || { cat "$WORK/requeued.log" >&2; fail "requeued: Grid Engine did not run it again, or it did not resume"; }
[ "$(result requeued)" = "$FULL" ] || fail "requeued: $(result requeued), uninterrupted: $FULL"
log "requeued run: $(result requeued), submit → done ${T_REQ}s"

# 3. qdel (with -notify): checkpoint before the kill; a new qsub with the same RUN resumes.
t=$(date +%s); id=$(submit deleted); wait_steps deleted 20
qdel "$id" >/dev/null
wait_gone "$id" deleted
[ ! -f "$WORK/deleted/finished.json" ] || fail "deleted: finished before the qdel took effect (make the run longer)"
grep -q "SIGUSR2: asking the coordinator to checkpoint" "$WORK/deleted.log" || { cat "$WORK/deleted.log" >&2; fail "deleted: no -notify signal"; }
[ -f "$WORK/deleted/checkpoints/last.ckpt" ] || fail "deleted: no checkpoint"
id2=$(submit deleted); wait_gone "$id2" deleted; T_DEL=$(elapsed "$t")
grep -q "resuming at epoch" "$WORK/deleted.log" || { cat "$WORK/deleted.log" >&2; fail "deleted: the new job did not resume"; }
[ "$(result deleted)" = "$FULL" ] || fail "deleted: $(result deleted), uninterrupted: $FULL"
log "deleted and resubmitted: $(result deleted), first submit → done ${T_DEL}s"
echo "Grid Engine tests passed in $(elapsed "$T0")s: full ${T_FULL}s, requeued ${T_REQ}s, qdel + qsub ${T_DEL}s"
