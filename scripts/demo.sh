#!/usr/bin/env bash
# The main job on the embedded default: demo data, demo checkpoints, harmonization.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/harmony demo --out demo --force "$@"
