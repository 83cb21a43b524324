#!/usr/bin/env bash
# Runs cluster/train.pbs and cluster/train.lsf outside their schedulers (neither PBS nor LSF is packaged by
# Debian), in the environment each scheduler gives a job: PBS_NODEFILE, PBS_JOBID, PBS_O_WORKDIR and a `qstat`
# that reports the walltime; LSB_DJOB_NUMPROC, LSB_JOBID, LS_SUBCWD. What the schedulers do themselves
# (requeue on exit 99, SIGTERM before SIGKILL) is not exercised here; `make test-sge` does that for Grid Engine.
#
#   make build && cluster/test-job-scripts.sh
#
# 1. PBS, Open MPI: a 16 s walltime with WARN=10: the script signals itself, the coordinator checkpoints, the
#    job exits 0; submitted again with a long walltime it resumes and finishes.
# 2. LSF, MPICH: SIGUSR1 to the job (as -wa USR1 sends it): checkpoint, exit 99 (LSF's -Q 99 requeues);
#    run again it resumes and finishes.
# Both end with the step count and validation loss of an uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/.build/release
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[test-job-scripts] $*" >&2; }
[ -x "$BIN/swiftrain" ] || fail "build first: swift build -c release"
command -v mpirun.openmpi >/dev/null && command -v mpiexec.mpich >/dev/null \
    || fail "needs openmpi-bin and mpich (make deps for the tests installs them)"
WORK=$(mktemp -d /tmp/swiftrain-jobs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
bash "$REPO/cluster/tiny-run.sh" "$BIN" "$WORK" 4
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "    Resource_List.walltime = ${WALLTIME:-04:00:00}"\n' > "$WORK/bin/qstat"
chmod +x "$WORK/bin/qstat"
printf 'localhost\nlocalhost\nlocalhost\nlocalhost\n' > "$WORK/nodefile"
result() { sed -n 's/.*"global_step":\([0-9]*\).*"val_loss":\([^,}]*\).*/step \1 val_loss \2/p' "$1/finished.json"; }
COMMON=(CONFIG="$WORK/tiny.yaml" SWIFTRAIN_BIN="$BIN" TRAIN_ARGS="--blas-threads 1 --progress-every 0")

# Open MPI outside PBS's own interface sees only this machine's cores: --oversubscribe stands in for the slots.
pbs() {  # pbs RUN WALLTIME
    env PATH="$WORK/bin:$PATH" WALLTIME="$2" WARN=10 PBS_NODEFILE="$WORK/nodefile" PBS_JOBID=42.pbs01 \
        PBS_O_WORKDIR="$REPO" RUN="$1" MPIRUN=mpirun.openmpi "${COMMON[@]}" \
        MPIRUN_ARGS="--allow-run-as-root --oversubscribe --bind-to none --mca odls_base_sigkill_timeout 30" \
        bash "$REPO/cluster/train.pbs"
}
lsf() {  # lsf RUN
    env LSB_DJOB_NUMPROC=4 LSB_JOBID=77 LS_SUBCWD="$REPO" RUN="$1" MPIRUN=mpiexec.mpich MPIRUN_ARGS= "${COMMON[@]}" \
        bash "$REPO/cluster/train.lsf"
}

lsf "$WORK/straight" > "$WORK/straight.log" 2>&1 || { cat "$WORK/straight.log" >&2; fail "uninterrupted run failed"; }
WANT=$(result "$WORK/straight")
[ -n "$WANT" ] || fail "the uninterrupted run did not finish"
log "uninterrupted: $WANT"

# 1. PBS: the walltime timer.
pbs "$WORK/pbs" 00:00:16 > "$WORK/pbs1.log" 2>&1 || { cat "$WORK/pbs1.log" >&2; fail "pbs: the first job failed"; }
grep -q "SIGUSR1: asking the coordinator to checkpoint" "$WORK/pbs1.log" || { cat "$WORK/pbs1.log" >&2; fail "pbs: no signal before the walltime"; }
grep -q "checkpoint written; submit the same job again" "$WORK/pbs1.log" || fail "pbs: no checkpoint"
[ ! -f "$WORK/pbs/finished.json" ] || fail "pbs: finished within the walltime (make the run longer)"
pbs "$WORK/pbs" 04:00:00 > "$WORK/pbs2.log" 2>&1 || { cat "$WORK/pbs2.log" >&2; fail "pbs: the second job failed"; }
grep -q "resuming at epoch" "$WORK/pbs2.log" || fail "pbs: the second job did not resume"
[ "$(result "$WORK/pbs")" = "$WANT" ] || fail "pbs: $(result "$WORK/pbs"), uninterrupted: $WANT"
pgrep -f "sleep $((14400 - 10))" >/dev/null && fail "pbs: the walltime timer outlived its job"
log "pbs: stopped before the walltime, resumed: $(result "$WORK/pbs")"

# 2. LSF: SIGUSR1 mid-run, exit 99, run again.
env LSB_DJOB_NUMPROC=4 LSB_JOBID=77 LS_SUBCWD="$REPO" RUN="$WORK/lsf" MPIRUN=mpiexec.mpich MPIRUN_ARGS= \
    "${COMMON[@]}" bash "$REPO/cluster/train.lsf" > "$WORK/lsf1.log" 2>&1 &
JOB=$!
deadline=$(( $(date +%s) + 120 ))
until n=$(grep -c '"kind":"step"' "$WORK/lsf/metrics.jsonl" 2>/dev/null || true); [ "${n:-0}" -ge 20 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "lsf: fewer than 20 steps after 120 s"
    sleep 0.1
done
kill -USR1 "$JOB"
set +e; wait "$JOB"; STATUS=$?; set -e
[ "$STATUS" = 99 ] || { cat "$WORK/lsf1.log" >&2; fail "lsf: exit status $STATUS, expected 99 (requeue)"; }
lsf "$WORK/lsf" > "$WORK/lsf2.log" 2>&1 || { cat "$WORK/lsf2.log" >&2; fail "lsf: the requeued job failed"; }
grep -q "resuming at epoch" "$WORK/lsf2.log" || fail "lsf: the requeued job did not resume"
[ "$(result "$WORK/lsf")" = "$WANT" ] || fail "lsf: $(result "$WORK/lsf"), uninterrupted: $WANT"
log "lsf: exit 99 on SIGUSR1, resumed: $(result "$WORK/lsf")"
echo "job script tests passed (PBS and LSF environments, Open MPI and MPICH)"
