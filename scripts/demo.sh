#!/usr/bin/env bash
# Replays the bundled demo session in real time with the terminal view and the dashboard,
# on the bundled Whisper model (offline). Extra arguments go to `session-monitor replay`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/session-monitor replay sample_audio/demo_session.flac --speed realtime --dashboard "$@"
