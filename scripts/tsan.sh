#!/usr/bin/env bash
# ThreadSanitizer over the concurrency stress test (tests/concurrency.rs, CPU engine: eight
# sessions on eight threads, cancels from other threads, dropped generations, save/restore)
# and the thread-safe API tests (tests/generation.rs). Nightly with -Zbuild-std, so the
# standard library is instrumented too; own target dir (target/tsan). The GPU instances are
# filtered out: the Vulkan driver is not instrumented, so TSan cannot see its synchronisation.
#
#   scripts/tsan.sh            # ~15 min on 2 cores the first time
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component add rust-src --toolchain nightly
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cargo +nightly test -Zbuild-std --target "$host" --target-dir target/tsan -p hearth \
  --test concurrency --test generation -- cpu
