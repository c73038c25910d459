#!/usr/bin/env bash
# Measure socklab's converter servers against the reference yardsticks, side by side in one run.
#
# The yardsticks (a C load generator, C and minimal Python reference servers, compare.py) live in
# the course's shared/bench folder; they are instruments, not part of socklab, so this script
# copies them to a temporary directory, builds them there and runs compare.py with socklab's
# server commands. Results (JSON, Markdown, server logs) land in benchmarks/results/.
#
# Usage: benchmarks/compare_references.sh [RUNS] [extra compare.py options...]
#   SOCKLAB_BENCH_DIR   where the yardsticks are (default: ../shared/bench beside the checkout)
#   SCENARIOS           compare.py scenarios (default: all five)
#   REFS                reference servers (default: the ones docs/PERFORMANCE.md quotes)
# Example (low-noise mode, server and load generator on one core):
#   benchmarks/compare_references.sh 3 --server-cpu 0 --loadgen-cpu 0
# A full run takes several minutes per RUNS: start it with nohup and poll the log.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOURCE=${SOCKLAB_BENCH_DIR:-$ROOT/../shared/bench}
RUNS=${1:-3}
shift || true
if [ ! -f "$SOURCE/compare.py" ]; then
  echo "compare.py not found in $SOURCE; set SOCKLAB_BENCH_DIR to the yardsticks' folder" >&2
  exit 2
fi
SOCKLAB="$ROOT/.venv/bin/socklab"
if [ ! -x "$SOCKLAB" ]; then
  echo "$SOCKLAB is missing: run 'make test' (or 'make run') first" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SOURCE/." "$WORK"
make -s -C "$WORK"
python3 -m venv "$WORK/.venv"
"$WORK/.venv/bin/pip" install --quiet uvloop
SCENARIOS=${SCENARIOS:-c1_64,c100_64,c100_1k,c100_idle10k,udp32_64}
REFS=${REFS:-ref_epoll,uvloop-protocol,asyncio-protocol,asyncio-streams,udp-c,udp-uvloop,udp-asyncio}
# 10,000 idle connections need --max-clients above the default of 1024.
SERVER="$SOCKLAB converter server --port {port} --max-clients 20000"
mkdir -p "$ROOT/benchmarks/results"
python3 "$WORK/compare.py" --runs "$RUNS" --out "$ROOT/benchmarks/results" --cwd "$ROOT" \
  --scenarios "$SCENARIOS" --refs "$REFS" \
  --new "socklab-uvloop=$SERVER --loop uvloop" \
  --new "socklab-asyncio=$SERVER --loop asyncio" \
  --new-udp "socklab-udp-uvloop=$SOCKLAB converter server --udp --port {port} --loop uvloop" \
  --new-udp "socklab-udp-asyncio=$SOCKLAB converter server --udp --port {port} --loop asyncio" \
  "$@"
