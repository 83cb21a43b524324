#!/usr/bin/env bash
# sge-up.sh — install (if missing), configure and start a real single-node Grid Engine (Debian's gridengine
# 8.1.9: qmaster + execd on this host) for cluster/test-sge.sh; tools/sge-down.sh stops what it started.
#
# Configures: this host as admin, submit and execution host; a parallel environment `mpi` ($fill_up, tight
# integration); a queue `all.q` with SGE_UP_SLOTS slots (default 8) and a 10 s notify time; root may submit
# (min_uid 0: a test machine); the scheduler runs every second. Idempotent. Root only. No systemd needed.
set -euo pipefail
SLOTS=${SGE_UP_SLOTS:-8}
TIMEOUT=${SGE_UP_TIMEOUT:-60}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
RUN=/run/sge-up
log() { printf '[sge-up] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
HOST=$(hostname)

if ! dpkg -s gridengine-master gridengine-exec gridengine-client >/dev/null 2>&1; then
    log "installing gridengine (cell default, master $HOST)"
    for p in gridengine-common gridengine-client; do
        printf '%s shared/gridenginemaster string %s\n%s shared/gridenginecell string default\n%s shared/gridengineconfig boolean true\n' \
            "$p" "$HOST" "$p" "$p" | debconf-set-selections
    done
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gridengine-master gridengine-exec gridengine-client >/dev/null
fi
COMMON=$SGE_ROOT/$SGE_CELL/common
[ -f "$COMMON/act_qmaster" ] || die "$COMMON/act_qmaster missing: the gridengine-master package did not configure"
echo "$HOST" > "$COMMON/act_qmaster"
# Grid Engine refuses a client whose address resolves to another name than it calls itself; on machines whose
# own name maps to 127.0.0.1 beside `localhost`, tell it they are one host.
echo "$HOST localhost" > "$COMMON/host_aliases"
mkdir -p "$RUN"

alive() { pgrep -x "$1" >/dev/null; }
wait_for() {  # wait_for DESCRIPTION COMMAND…
    local desc=$1 deadline=$(( $(date +%s) + TIMEOUT )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$desc not ready after ${TIMEOUT}s"
        sleep 0.5
    done
}
if ! alive sge_qmaster; then
    /usr/sbin/sge_qmaster
    echo sge_qmaster >> "$RUN/started"
fi
wait_for "sge_qmaster" qconf -sh

qconf -ah "$HOST" >/dev/null 2>&1 || true
qconf -as "$HOST" >/dev/null 2>&1 || true
# Root may submit; the scheduler runs every second (the default waits 15 s between passes).
TMP=$(mktemp -d)
qconf -sconf | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' > "$TMP/global"
qconf -Mconf "$TMP/global" >/dev/null
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec 1/' > "$TMP/sched"
qconf -Msconf "$TMP/sched" >/dev/null
if ! qconf -sp mpi >/dev/null 2>&1; then
    cat > "$TMP/pe" <<PE
pe_name            mpi
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$fill_up
control_slaves     TRUE
job_is_first_task  FALSE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
PE
    qconf -Ap "$TMP/pe" >/dev/null
fi
if ! alive sge_execd; then
    /usr/sbin/sge_execd
    echo sge_execd >> "$RUN/started"
fi
wait_for "execution host $HOST" sh -c "qhost -h $HOST | grep -q '^$HOST .*lx-amd64 *[0-9]'"
if ! qconf -sq all.q >/dev/null 2>&1; then
    qconf -sq | sed -e 's/^qname .*/qname all.q/' -e "s/^hostlist .*/hostlist $HOST/" -e "s/^slots .*/slots $SLOTS/" \
        -e 's/^pe_list .*/pe_list mpi/' -e 's/^shell .*/shell \/bin\/bash/' -e 's/^notify .*/notify 00:00:10/' \
        -e 's/^shell_start_mode .*/shell_start_mode unix_behavior/' > "$TMP/q"
    qconf -Aq "$TMP/q" >/dev/null
fi
rm -rf "$TMP"
wait_for "queue all.q@$HOST" sh -c "qstat -f -q all.q | grep -q '^all.q@$HOST .* 0/0/$SLOTS ' && ! qstat -f -q all.q | grep -q '^all.q@.* [a-zA-Z]*[uEd]\$'"
log "up: all.q@$HOST, $SLOTS slots, parallel environment mpi"
