#!/usr/bin/env bash
# bench-hosts.sh — a training run across "hosts" (network namespaces, ../shared/tools/netns-hosts.sh)
# whose egress is capped (default 1 Gbit/s per host, as on a plain cluster network), to measure what
# share of a step goes to communication. Prints one line per run; root only.
#
#   sudo tools/bench-hosts.sh CONFIG [--hosts 2] [--per-host 1] [--rate 1gbit] [--steps 6] [-- TRAIN FLAGS…]
#
# The coordinator runs in the root namespace (10.202.0.254), the workers in h1…hH; CURVE is on (the
# coordinator listens beyond loopback). Figures come from the run's metrics.jsonl (seconds, compute
# and wait per step, bytes at the coordinator, ring bytes per worker) and from each host's interface
# counters (egress per step), after two warm-up steps.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tool=$here/../shared/tools/netns-hosts.sh
bin=${SWIFTRAIN_BIN:-$here/.build/release}
config=${1:?usage: bench-hosts.sh CONFIG [--hosts H] [--per-host K] [--rate R] [--steps N] [-- TRAIN FLAGS]}
shift
hosts=2 per=1 rate=1gbit steps=6 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=$2; shift 2 ;;
    --per-host) per=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench-hosts: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-hosts: needs root (network namespaces)" >&2; exit 2; }
run=$(mktemp -d /tmp/swiftrain-bench-hosts.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; "$tool" down >/dev/null 2>&1 || true; }
trap cleanup EXIT
"$tool" up "$hosts" >/dev/null 2>&1
for h in $(seq 1 "$hosts"); do "$tool" rate "h$h" "$rate" >/dev/null 2>&1; done
port=$((20000 + RANDOM % 20000))
declare -A before
for h in $(seq 1 "$hosts"); do before[$h]=$("$tool" bytes "h$h" | awk '{print $2}'); done
"$bin/swiftrain" train --config "$config" --run "$run/run" --listen "tcp://10.202.0.254:$port" \
  --expect-workers $((hosts * per)) --max-steps $((steps + 2)) --progress-every 1000 --step-timeout 1200 \
  "${extra[@]}" 2> "$run/coordinator.log" &
coordinator=$!
k=0
for h in $(seq 1 "$hosts"); do
  for _ in $(seq 1 "$per"); do
    "$tool" run "h$h" "$bin/swiftrain-worker" --connect "tcp://10.202.0.254:$port" --keys "$run/run/keys/workers/w$k" \
      2>> "$run/workers.log" &
    k=$((k + 1))
    pids+=($!)
  done
done
wait "$coordinator" || { echo "bench-hosts: the run failed; see $run/coordinator.log" >&2; tail -5 "$run/coordinator.log" >&2; exit 1; }
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
egress=""
for h in $(seq 1 "$hosts"); do egress="$egress $(( $("$tool" bytes "h$h" | awk '{print $2}') - ${before[$h]} ))"; done
python3 - "$run/run/metrics.jsonl" "$steps" "$hosts" "$per" "$rate" $egress <<'EOF'
import json, statistics, sys
path, steps, hosts, per, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
egress = [int(x) for x in sys.argv[6:]]
rows = [json.loads(l) for l in open(path) if '"kind": "step"' in l or '"kind":"step"' in l]
rows = [r for r in rows if r.get("kind") == "step"]
timed = rows[2:]
sec = statistics.median(r["seconds"] for r in timed)
comp = statistics.median(r["compute_seconds"] for r in timed)
wait = statistics.median(r["wait_seconds"] for r in timed)
coord = statistics.median(r["coordinator_bytes"] for r in timed)
ring = [statistics.median(r["ring_bytes"][p] for r in timed) for p in range(len(timed[0]["ring_bytes"]))]
# Egress counts every step, warm-ups included.
per_step = [e / len(rows) for e in egress]
print(f"{hosts} host(s) x {per} worker(s), egress cap {rate}: {sec:.3f} s/step, compute {comp:.3f} s, "
      f"waiting {wait:.3f} s ({100 * wait / sec:.1f}% of the step); coordinator {coord:.0f} B/step; "
      f"ring bytes per worker {[int(x) for x in ring]}; host egress per step {[int(x) for x in per_step]}")
EOF
