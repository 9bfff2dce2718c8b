#!/usr/bin/env bash
# Builds staticlibs of hearth-ffi for iOS (device) and Android (arm64) on any machine
# with the Rust targets installed (no Xcode, no NDK: a staticlib needs no platform linker) and
# checks with nm that each exports every uniffi entry point of the host library. Catches an
# export lost behind a cfg, or a target that stopped compiling.
#
#   scripts/check-mobile-libs.sh                   both targets
#   scripts/check-mobile-libs.sh aarch64-apple-ios one target
#   MOBILE_PROFILE=mobile-check scripts/...       unoptimised (CI: same check, a fraction of the time)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# The cross builds may use another target dir (MOBILE_TARGET_DIR); the host library is built in
# CARGO_TARGET_DIR.
mobile_dir="${MOBILE_TARGET_DIR:-$CARGO_TARGET_DIR}"
profile="${MOBILE_PROFILE:-release}"
case "$profile" in dev) profile_dir=debug ;; *) profile_dir="$profile" ;; esac
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(aarch64-apple-ios aarch64-linux-android)

# llvm-nm reads Mach-O and every ELF machine; GNU nm may not know Mach-O arm64.
nm="${NM:-$(command -v llvm-nm || command -v nm)}"
symbols() { # the sorted uniffi_hearth_ffi_fn_* symbols a library defines
  "$nm" -g --defined-only "$1" 2>/dev/null | awk '{print $NF}' | sed 's/^_//' \
    | grep '^uniffi_hearth_ffi_fn_' | sort -u
}

cargo build -q -p hearth-ffi
host=$(symbols "$CARGO_TARGET_DIR/debug/libhearth_ffi.so")
n_host=$(grep -c . <<<"$host" || true)
[ "$n_host" -gt 0 ] || { echo "check-mobile-libs: no uniffi_hearth_ffi_fn_* symbols in the host library" >&2; exit 1; }
grep -q '^uniffi_hearth_ffi_fn_method_modelstore_download$' <<<"$host" \
  || { echo "check-mobile-libs: the host library has no ModelStore (feature store off?)" >&2; exit 1; }
echo "host library: $n_host uniffi_hearth_ffi_fn_* symbols (ModelStore included)"

failed=0
for t in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  start=$(date +%s)
  # `cargo rustc --crate-type staticlib`: `cargo build` would also link the cdylib, which needs
  # the platform linker (Xcode / NDK) that is absent here.
  # Default features: the model store (and its TLS) included.
  CARGO_TARGET_DIR="$mobile_dir" cargo rustc -q --profile "$profile" --target "$t" -p hearth-ffi --lib --crate-type staticlib
  lib="$mobile_dir/$t/$profile_dir/libhearth_ffi.a"
  missing=$(comm -23 <(echo "$host") <(symbols "$lib"))
  size="$(( $(stat -c %s "$lib") / 1000000 )) MB"
  if [ -n "$missing" ]; then
    echo "FAIL $t ($size, $(( $(date +%s) - start )) s): missing $(echo "$missing" | tr '\n' ' ')"
    failed=$((failed + 1))
  else
    echo "ok   $t ($profile): $lib ($size, $(( $(date +%s) - start )) s), all $n_host entry points present"
  fi
done
echo "check-mobile-libs: $(( ${#targets[@]} - failed )) passed, $failed failed"
[ "$failed" = 0 ]
