#!/usr/bin/env bash
# sge-down.sh — stops the Grid Engine daemons tools/sge-up.sh started (and deletes the jobs left in its queue).
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
RUN=/run/sge-up
[ -f "$RUN/started" ] || exit 0
qdel -f -u '*' '*' >/dev/null 2>&1 || true
for d in $(tac "$RUN/started"); do
    pkill -x "$d" 2>/dev/null || true
    for _ in $(seq 1 50); do pgrep -x "$d" >/dev/null || break; sleep 0.2; done
    pkill -9 -x "$d" 2>/dev/null || true
done
rm -f "$RUN/started"
echo "[sge-down] stopped" >&2
