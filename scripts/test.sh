#!/usr/bin/env bash
# Runs every test of the workspace. Tests that depend on the backend run once per backend in
# the same binary (`backend_tests!` / `engine_tests!` in core/tests/common): on the CPU, and on
# the GPU where a Vulkan adapter (Mesa's lavapipe on machines without a GPU) passes the
# self-test; without one the GPU instances print SKIP (visible with `-- --nocapture`), and
# HEARTH_REQUIRE_GPU=1 turns that into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo test --workspace "$@"
