#!/usr/bin/env bash
# Seconds from a fresh clone to a service answering /api/health with `make serve`,
# and the seconds `make test` takes in a second fresh clone.
# Usage: bench/fresh_start.sh [PORT]
set -euo pipefail
port="${1:-8765}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill -- "-$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

git clone -q "$repo" "$work/serve"
cd "$work/serve"
start=$(date +%s.%N)
QA_PORT="$port" setsid make serve >"$work/serve.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/api/health" >/dev/null; do
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.5
done
echo "make serve: ready after $(echo "$(date +%s.%N) - $start" | bc) s"

git clone -q "$repo" "$work/test"
cd "$work/test"
start=$(date +%s.%N)
make test >"$work/test.log" 2>&1 || { tail -30 "$work/test.log"; exit 1; }
echo "make test: $(echo "$(date +%s.%N) - $start" | bc) s in all; pytest: $(tail -1 "$work/test.log" | tr -d '=')"
