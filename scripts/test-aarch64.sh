#!/usr/bin/env bash
# The CPU kernel tests (scalar and NEON-dotprod paths, golden fixtures) built for aarch64 Linux
# and run under qemu-user, for aarch64 correctness without a phone. `-cpu max` gives qemu's
# emulated CPU the dotprod extension, so `detected()` picks the NEON kernels; the forced-scalar
# test covers the fallback. Installs the cross toolchain on first use (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
if ! command -v qemu-aarch64-static >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  apt-get update && apt-get install -y qemu-user-static gcc-aarch64-linux-gnu
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu max -L /usr/aarch64-linux-gnu"
cargo test -p hearth --target "$target" --test cpu_kernels "$@"
# And once more with the scalar kernels as the detected level.
HEARTH_CPU_NO_SIMD=1 cargo test -p hearth --target "$target" --test cpu_kernels "$@"
