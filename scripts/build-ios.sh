#!/usr/bin/env bash
# Builds ios/HearthFFI.xcframework on a Mac (Xcode command-line tools + rustup): release
# staticlibs of hearth-ffi for the device, the simulators (Apple silicon + Intel, one lipo'd
# library) and macOS, with the generated C header and module map. Then `swift build` in ios/
# (or adding the package in Xcode) links it.
#
#   scripts/build-ios.sh                 all slices, os_log logging
#   FEATURES= scripts/build-ios.sh       without the oslog feature (stderr logging)
#   SLICES="ios sim" scripts/build-ios.sh   skip the macOS slice
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname)" = Darwin ] || { echo "build-ios: needs macOS with Xcode (xcodebuild, lipo)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
features="${FEATURES-oslog}"
slices="${SLICES:-ios sim macos}"
# Size-tuned: fat LTO and one codegen unit drop what the FFI surface does not reach
# (see [profile.release-mobile] in Cargo.toml).
profile=release-mobile
export IPHONEOS_DEPLOYMENT_TARGET=16.0 MACOSX_DEPLOYMENT_TARGET=13.0

# (No associative arrays: macOS ships bash 3.2.)
slice_targets() {
  case "$1" in
    ios) echo aarch64-apple-ios ;;
    sim) echo aarch64-apple-ios-sim x86_64-apple-ios ;;
    macos) echo aarch64-apple-darwin x86_64-apple-darwin ;;
    *) echo "build-ios: unknown slice $1" >&2; exit 1 ;;
  esac
}

for slice in $slices; do slice_targets "$slice" >/dev/null; done

# Headers from the committed generated files; must match the Rust library being packaged.
scripts/gen-bindings.sh --check

out="$CARGO_TARGET_DIR/xcframework"
rm -rf "$out" ios/HearthFFI.xcframework
mkdir -p "$out"
xcf_args=()
for slice in $slices; do
  libs=()
  for t in $(slice_targets "$slice"); do
    rustup target add "$t"
    # Only the staticlib: the cdylib is not shipped (and skipping it halves the link work).
    cargo rustc -p hearth-ffi --lib --crate-type staticlib --profile "$profile" --target "$t" \
      ${features:+--features "$features"}
    libs+=("$CARGO_TARGET_DIR/$t/$profile/libhearth_ffi.a")
  done
  lib="$out/$slice/libhearth_ffi.a"
  mkdir -p "$out/$slice"
  if [ "${#libs[@]}" -gt 1 ]; then lipo -create "${libs[@]}" -output "$lib"; else cp "${libs[0]}" "$lib"; fi
  echo "$slice: $(lipo -archs "$lib"), $(du -h "$lib" | cut -f1)"
  # The headers folder holds HearthFFI/{HearthFFI.h,module.modulemap}: namespaced, so that two
  # XCFrameworks in one app do not both install include/module.modulemap.
  xcf_args+=(-library "$lib" -headers ios/Sources/HearthFFI/include)
done

xcodebuild -create-xcframework "${xcf_args[@]}" -output ios/HearthFFI.xcframework
echo "built ios/HearthFFI.xcframework"
