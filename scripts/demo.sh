#!/usr/bin/env bash
# Builds the hearth CLI (release) and streams a generation from a bundled tiny model.
# The fixture models have random weights: the text is gibberish, the machinery is real.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo build --release -p hearth-cli
model="${1:-core/tests/fixtures/gguf/lfm2moe-h256-e8k2-q4_k_m.gguf}"
./target/release/hearth info "$model" | head -4
./target/release/hearth run "$model" --prompt "The quick brown fox" --max-tokens 48 --temp 0.8 --seed 42
