#!/usr/bin/env bash
# Tests cluster/train.sbatch on a real single-node SLURM (brought up by ../shared/tools/slurm-up.sh,
# which advertises 8 CPUs; stopped again at the end). Needs root and the release build:
#
#   make build && sudo cluster/test-slurm.sh
#
# 1. 1 coordinator + 3 workers train a tiny synthetic configuration to the end: metrics, a
#    checkpoint that loads, finished.json.
# 2. The same job receives the preemption signal mid-training (SIGUSR1 to the batch script, as
#    --signal=B:USR1@90 sends it), checkpoints, requeues itself and resumes: same final step count.
# 3. A worker task is killed with SIGKILL mid-training: the job still completes.
# 4. `swiftrain suite --slurm` runs a 2-cell grid as a job array; the report assembles.
# 5. `srun swiftrain launch` (one command line on every task) trains to the same step count.
# Prints submit → done times.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TOOLS=${SLURM_TOOLS:-$REPO/../shared/tools}
BIN=$REPO/.build/release
WAIT=${SLURM_TEST_TIMEOUT:-300}     # seconds a job may take before the test fails

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[test-slurm] $*" >&2; }
[ "$(id -u)" = 0 ] || fail "run as root (SLURM daemons are started and stopped by this test)"
[ -x "$BIN/swiftrain" ] && [ -x "$BIN/swiftrain-worker" ] || fail "build first: swift build -c release"

WORK=$(mktemp -d /tmp/swiftrain-slurm.XXXXXX)
cleanup() {
    local jobs; jobs=$(squeue -h -o %i -n swiftrain,swiftrain-suite 2>/dev/null || true)
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
    bash "$TOOLS/slurm-down.sh" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
bash "$TOOLS/slurm-up.sh"

# Tiny synthetic data and configuration (F = 8, 2 epochs of ~80 steps).
bash "$REPO/cluster/tiny-run.sh" "$BIN" "$WORK" 2

# submit NAME: prints the job id. 4 tasks × 1 CPU: 1 coordinator + 3 single-thread workers.
submit() {
    sbatch --parsable --ntasks=4 --cpus-per-task=1 --time=10 --chdir="$WORK" --output="$WORK/$1.log" \
        --export=ALL,CONFIG="$WORK/tiny.yaml",RUN="$WORK/$1",SWIFTRAIN_BIN="$BIN" "$REPO/cluster/train.sbatch"
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n1; }
# wait_done ID NAME: until the job has left the queue for good (requeues included), bounded.
wait_done() {
    local deadline=$(( $(date +%s) + WAIT )) s
    while true; do
        s=$(job_state "$1")
        case "$s" in COMPLETED) return 0 ;; FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) cat "$WORK/$2.log" >&2; fail "job $1 ($2) ended $s" ;; esac
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/$2.log" >&2; fail "job $1 ($2) not done after ${WAIT}s (state $s)"; }
        sleep 0.5
    done
}
# wait_steps NAME K: until the run has logged K training steps.
wait_steps() {
    local deadline=$(( $(date +%s) + WAIT ))
    until n=$(grep -c '"kind":"step"' "$WORK/$1/metrics.jsonl" 2>/dev/null || true); [ "${n:-0}" -ge "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/$1.log" >&2; fail "$1: fewer than $2 steps after ${WAIT}s"; }
        sleep 0.2
    done
}
final_step() { sed -n 's/.*"global_step":\([0-9]*\).*/\1/p' "$WORK/$1/finished.json"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# 1. A whole run.
t=$(date +%s); id=$(submit full); wait_done "$id" full; T_FULL=$(elapsed "$t")
[ -f "$WORK/full/finished.json" ] || fail "full: no finished.json"
[ "$(grep -c '"kind":"valid"' "$WORK/full/metrics.jsonl")" = 2 ] || fail "full: expected 2 validation lines in metrics.jsonl"
"$BIN/swiftrain" checkpoint "$WORK/full" || fail "full: the checkpoint does not load"
STEPS=$(final_step full)
grep -q "3 live" "$WORK/full.log" || fail "full: 3 workers never joined"
log "full run: $STEPS steps, submit → done ${T_FULL}s"

# 2. Preemption: SIGUSR1 to the batch script (what --signal=B:USR1@90 does), requeue, resume.
t=$(date +%s); id=$(submit preempt); wait_steps preempt 20
scancel --batch --signal=USR1 "$id"
wait_done "$id" preempt; T_PRE=$(elapsed "$t")
grep -q "requeueing job $id" "$WORK/preempt.log" || fail "preempt: the job did not requeue itself"
grep -q "resuming from" "$WORK/preempt.log" || fail "preempt: the requeued job did not resume"
[ "$(final_step preempt)" = "$STEPS" ] || fail "preempt: $(final_step preempt) steps, uninterrupted run $STEPS"
RESTARTS=$(scontrol show job "$id" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
[ "${RESTARTS:-0}" -ge 1 ] || fail "preempt: SLURM shows no restart"
"$BIN/swiftrain" checkpoint "$WORK/preempt" || fail "preempt: the checkpoint does not load"
log "preempted run: requeued ${RESTARTS}×, $STEPS steps, submit → done ${T_PRE}s"

# 3. A worker task killed: the job still completes, with the survivors.
t=$(date +%s); id=$(submit killed); wait_steps killed 10
victim=$(pgrep -f "swiftrain-worker --keys $WORK/killed/keys" | head -n1)
[ -n "$victim" ] || fail "killed: no worker task found"
kill -9 "$victim"
wait_done "$id" killed; T_KILL=$(elapsed "$t")
grep -q "declared dead" "$WORK/killed.log" || fail "killed: the coordinator never noticed"
[ "$(final_step killed)" = "$STEPS" ] || fail "killed: $(final_step killed) steps, expected $STEPS"
log "worker killed: completed with the survivors, submit → done ${T_KILL}s"

# 4. `swiftrain suite --slurm`: a 2-cell job array (both at once), both cells finish, the report assembles.
t=$(date +%s)
"$BIN/swiftrain" suite --config "$WORK/tiny.yaml" --grid imerg=true,false --out "$WORK/suite" --workers 1 \
    --slurm --max-parallel 2 --sbatch-args "--cpus-per-task=1 --time=10 --chdir=$WORK" >"$WORK/suite.job" \
    || fail "suite: the submission failed"
aid=$(cat "$WORK/suite.job"); [ -n "$aid" ] || fail "suite: no job id printed"
deadline=$(( $(date +%s) + WAIT ))
while [ -n "$(squeue -h -j "$aid" 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/suite/logs/"*.log >&2; fail "suite: array $aid not done after ${WAIT}s"; }
    sleep 0.5
done
for cell in imerg-true imerg-false; do
    [ -f "$WORK/suite/$cell/finished.json" ] || { cat "$WORK/suite/logs/"*.log >&2; fail "suite: cell $cell did not finish"; }
done
[ "$(ls "$WORK/suite/logs/" | grep -c "^slurm-${aid}_")" = 2 ] || fail "suite: expected one log per array task"
"$BIN/swiftrain" suite --report "$WORK/suite" >"$WORK/suite-report.md" || fail "suite: the report failed"
grep -q "^| ConvLSTM, simsat | [0-9]" "$WORK/suite-report.md" || fail "suite: no ConvLSTM row in the report"
grep -q "^| persistence | [0-9]" "$WORK/suite-report.md" || fail "suite: no baselines in the report"
# Re-submitting a finished suite submits nothing.
[ -z "$("$BIN/swiftrain" suite --config "$WORK/tiny.yaml" --grid imerg=true,false --out "$WORK/suite" --workers 1 --slurm)" ] \
    || fail "suite: a finished suite was submitted again"
T_SUITE=$(elapsed "$t")
log "suite: 2-cell job array finished and reported, submit → report ${T_SUITE}s"

# 5. `srun swiftrain launch`: the command line of every launcher, under srun (roles and address from SLURM).
t=$(date +%s)
id=$(sbatch --parsable --ntasks=4 --cpus-per-task=1 --time=10 --chdir="$WORK" --output="$WORK/launch.log" \
    --wrap "srun --kill-on-bad-exit=0 $BIN/swiftrain launch --config $WORK/tiny.yaml --run $WORK/launch --blas-threads 1")
wait_done "$id" launch; T_LAUNCH=$(elapsed "$t")
grep -q "SLURM: rank 0 of 4, new run" "$WORK/launch.log" || { cat "$WORK/launch.log" >&2; fail "launch: rank 0 did not coordinate"; }
[ "$(final_step launch)" = "$STEPS" ] || fail "launch: $(final_step launch) steps, expected $STEPS"
log "srun swiftrain launch: $STEPS steps, submit → done ${T_LAUNCH}s"

echo "SLURM tests passed: full ${T_FULL}s, preempted+requeued ${T_PRE}s, worker killed ${T_KILL}s, suite array ${T_SUITE}s, srun launch ${T_LAUNCH}s"
