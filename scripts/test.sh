#!/usr/bin/env bash
# Sets up the machine, then runs the whole test suite (real audio device, real browser,
# real Whisper model). Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
