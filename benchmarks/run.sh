#!/usr/bin/env bash
# Side-by-side benchmark of the server and the oidc-provider peer (see README.md, "Benchmarks").
# Usage: benchmarks/run.sh [--postgres] [--rounds N] [--duration S] [--soak S] [--only cc-rs256,discovery,...]
# Installs wrk if missing; needs the .NET SDK, node and npm. Loopback only; stops everything it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi
fi
exec timeout 3600 python3 benchmarks/bench.py "$@"
