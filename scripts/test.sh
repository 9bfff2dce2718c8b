#!/usr/bin/env bash
# Runs every test of the workspace: CPU, and GPU tests on whatever Vulkan adapter exists
# (Mesa's lavapipe on machines without a GPU; without any adapter GPU tests print SKIP).
# Then, if a GPU adapter passes the self-test, the session tests again on the GPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo test --workspace "$@"
# The CLI binary was built by the test run above (same features: no rebuild).
hearth="${CARGO_TARGET_DIR:-target}/debug/hearth"
if "$hearth" info --gpu core/tests/fixtures/gguf/lfm2-dense-h64-q4_0.gguf 2>/dev/null \
    | grep -q "self-test vs CPU reference: passed"; then
  echo "=== session and generation tests on the GPU backend"
  # The test binaries of the run above: `cargo test --test session` alone would unify
  # dependency features differently and rebuild the crate.
  built=$(cargo test --workspace --no-run --message-format=json "$@" 2>/dev/null)
  for name in session generation; do
    bin=$(echo "$built" | grep "\"name\":\"$name\"" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
    HEARTH_TEST_BACKEND=gpu "$bin"
  done
else
  echo "=== no GPU adapter passed the self-test: session tests ran on the CPU only"
fi
