#!/usr/bin/env bash
# The main job: set up, start the embedded local stack, and make a published video from a prompt.
#   bash scripts/demo.sh ["a prompt"] [extra `reelforge generate` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PROMPT=${1:-"a red circle moves from left to right"}
shift || true
.venv/bin/reelforge up
mkdir -p out
.venv/bin/reelforge generate "$PROMPT" --seed 1 --out out/video.mp4 \
  --aspect 9:16 --logo examples/logo.png --music examples/music.wav --lut warm \
  --text "Summer sale -20%" "$@"
