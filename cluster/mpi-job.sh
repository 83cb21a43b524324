#!/usr/bin/env bash
# The body of cluster/train.sge, cluster/train.pbs and cluster/train.lsf (each only adds its scheduler's
# resource lines and says how it requeues): one `mpirun` of `swiftrain launch` over the job's slots.
# Rank 0 coordinates (it resumes RUN's last checkpoint when there is one) and publishes its address in
# RUN/coordinator.json; every other rank is a worker. RUN must be on a file system every node shares.
#
# Environment (the scheduler script sets the first three):
#   NP               ranks: 1 coordinator + NP − 1 workers (the job's slots)
#   JOB              the scheduler's job id (for the log)
#   REQUEUE_STATUS   exit status that makes the scheduler requeue the job (SGE, LSF: 99); empty: none
#   CONFIG, RUN      configuration and run directory (default configs/demo.yaml, runs/<scheduler>-<job>)
#   SWIFTRAIN_BIN    the binaries (default .build/release); TRAIN_ARGS: extra `swiftrain launch` flags
#   MPIRUN           the launcher (default mpirun); MPIRUN_ARGS its flags (default for Open MPI:
#                    --bind-to none, so each worker's threads are not bound to one core, and
#                    --mca odls_base_sigkill_timeout 30, so a SIGTERM leaves time for the checkpoint)
#
# Signals: SIGUSR1, SIGUSR2 or SIGTERM to this script (the scheduler's warning before a time limit,
# preemption or deletion) are passed to mpirun as SIGUSR1, which forwards it to every rank: the
# coordinator checkpoints after the current step and shuts the workers down. The script then exits
# with REQUEUE_STATUS (the scheduler runs the job again and it resumes) or, without one, says how to
# resubmit. A job whose run has finished exits 0 at once.
set -uo pipefail
: "${NP:?set NP to the slots of the job}"
CONFIG=${CONFIG:-configs/demo.yaml}
RUN=${RUN:?set RUN}
BIN=${SWIFTRAIN_BIN:-.build/release}
MPIRUN=${MPIRUN:-mpirun}
if [ -z "${MPIRUN_ARGS+set}" ]; then
    # Open MPI binds each rank to a core by default, and on a SIGTERM of its own SIGTERMs the ranks 1 s later and
    # SIGKILLs them 1 s after that: unbound, and 30 s each, so a scheduler's SIGTERM (which reaches every rank
    # too) leaves the coordinator time to checkpoint. MPICH's Hydra binds nothing and waits by itself.
    MPIRUN_ARGS=""
    if "$MPIRUN" --version 2>&1 | grep -qE "Open MPI|OpenRTE"; then
        MPIRUN_ARGS="--bind-to none --mca odls_base_sigkill_timeout 30"
    fi
fi
say() { echo "[${SCHEDULER:-job}] $(date -u +%FT%TZ) $*"; }

mkdir -p "$RUN"
if [ -f "$RUN/finished.json" ]; then say "$RUN has finished training: $(cat "$RUN/finished.json")"; exit 0; fi
[ -f "$RUN/checkpoints/last.ckpt" ] && say "resuming from $RUN/checkpoints/last.ckpt"
say "job ${JOB:-?}: $NP ranks (1 coordinator + $((NP - 1)) workers), run $RUN"

# shellcheck disable=SC2086
"$MPIRUN" $MPIRUN_ARGS -np "$NP" "$BIN/swiftrain" launch --config "$CONFIG" --run "$RUN" --min-workers 1 \
    ${TRAIN_ARGS:-} &
LAUNCHER=$!

SIGNALLED=""
on_signal() {
    SIGNALLED=$1
    say "SIG$1: asking the coordinator to checkpoint"
    kill -USR1 "$LAUNCHER" 2>/dev/null
}
trap 'on_signal USR1' USR1
trap 'on_signal USR2' USR2
trap 'on_signal TERM' TERM

# `wait` returns early when a trapped signal arrives: keep waiting until mpirun has really exited.
while true; do
    wait "$LAUNCHER"; STATUS=$?
    kill -0 "$LAUNCHER" 2>/dev/null || break
done

if [ -f "$RUN/finished.json" ]; then
    say "training finished: $(cat "$RUN/finished.json")"
    exit 0
fi
if [ -n "$SIGNALLED" ] && [ -f "$RUN/checkpoints/last.ckpt" ]; then
    if [ -n "${REQUEUE_STATUS:-}" ]; then
        say "checkpoint written; exit $REQUEUE_STATUS asks the scheduler to requeue job ${JOB:-?} (a deleted job stays deleted: submit again with RUN=$RUN to resume)"
        exit "$REQUEUE_STATUS"
    fi
    say "checkpoint written; submit the same job again (RUN=$RUN) to resume"
    exit 0
fi
say "training stopped without finishing (mpirun status $STATUS); submit again with RUN=$RUN to resume"
exit "${STATUS:-1}"
