#!/usr/bin/env bash
# Soak test (tests/soak.rs): a 50-turn, 10 000+ token conversation with regenerates, edits,
# cancels and context overflow, on the CPU and the GPU (lavapipe here). Prints RSS and GPU
# resource creations per turn; fails if either grows after warm-up or a rerun with the same
# seeds differs. One test at a time, so the RSS samples are the test's own.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cargo test -p hearth --test soak -- --ignored --nocapture --test-threads=1 "$@"
