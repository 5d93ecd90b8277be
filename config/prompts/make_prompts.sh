#!/usr/bin/env bash
# Regenerate the demo IVR prompts: 8 kHz mono 16-bit PCM WAV files, one per line of prompts.txt.
# Needs espeak-ng and sox. Usage: config/prompts/make_prompts.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
while IFS='|' read -r name text; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  espeak-ng -s 165 -w "$tmp/$name.wav" "$text"
  sox "$tmp/$name.wav" -r 8000 -c 1 -b 16 -e signed-integer "$name.wav"
done < prompts.txt
