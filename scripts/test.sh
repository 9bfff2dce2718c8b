#!/usr/bin/env bash
# Runs every test of the workspace (CPU, and GPU tests on whatever Vulkan adapter exists —
# Mesa's lavapipe on machines without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo test --workspace "$@"
