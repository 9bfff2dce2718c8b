#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings of hearth-ffi from the host library (its embedded
# metadata is the same for every target) with the workspace's pinned uniffi-bindgen.
#
#   scripts/gen-bindings.sh           regenerate the committed files in place
#   scripts/gen-bindings.sh --check   regenerate into a temporary folder and fail if any
#                                     committed file differs (CI: "regenerate -> no diff")
#
# Outputs (committed):
#   android/hearth/src/main/kotlin/dev/hearth/hearth_ffi.kt   Android flavour (SystemCleaner, androidx)
#   android/jvm/generated/dev/hearth/hearth_ffi.kt            JVM flavour, for the Maven tests
#   ios/Sources/Hearth/Generated/Hearth.swift                 Swift API
#   ios/Sources/HearthFFI/include/HearthFFI/{HearthFFI.h,module.modulemap}
#       C header + module map in a folder named after the module, so that the XCFramework's
#       headers do not collide with another framework's module.modulemap in an app build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

cargo build -q -p hearth-ffi -p uniffi-bindgen
lib="$CARGO_TARGET_DIR/debug/libhearth_ffi.so"
[ "$(uname)" = Darwin ] && lib="$CARGO_TARGET_DIR/debug/libhearth_ffi.dylib"
bindgen="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
bindgen_swift="$CARGO_TARGET_DIR/debug/uniffi-bindgen-swift"

if [ "$check" = 1 ]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
else
  root=.
fi

kotlin_android="$root/android/hearth/src/main/kotlin"
kotlin_jvm="$root/android/jvm/generated"
swift_src="$root/ios/Sources/Hearth/Generated"
swift_ffi="$root/ios/Sources/HearthFFI/include/HearthFFI"
mkdir -p "$kotlin_android" "$kotlin_jvm" "$swift_src" "$swift_ffi"

# --no-format: ktlint / swift-format are not installed everywhere, and the output must not
# depend on whether they are.
"$bindgen" generate "$lib" --language kotlin --out-dir "$kotlin_android" --no-format
# The JVM flavour: a global config (uniffi 0.32 `--config`) switches off the Android APIs.
"$bindgen" generate "$lib" --language kotlin --out-dir "$kotlin_jvm" --no-format \
  --config android/jvm/uniffi-jvm.toml
"$bindgen_swift" --swift-sources "$lib" "$swift_src"
"$bindgen_swift" --headers --modulemap --module-name HearthFFI \
  --modulemap-filename module.modulemap "$lib" "$swift_ffi"

generated=(
  android/hearth/src/main/kotlin/dev/hearth/hearth_ffi.kt
  android/jvm/generated/dev/hearth/hearth_ffi.kt
  ios/Sources/Hearth/Generated/Hearth.swift
  ios/Sources/HearthFFI/include/HearthFFI/HearthFFI.h
  ios/Sources/HearthFFI/include/HearthFFI/module.modulemap
)
for f in "${generated[@]}"; do
  [ -f "$root/$f" ] || { echo "gen-bindings: expected output $f was not generated" >&2; exit 1; }
done

if [ "$check" = 1 ]; then
  stale=0
  for f in "${generated[@]}"; do
    if ! cmp -s "$root/$f" "$f"; then
      echo "gen-bindings --check: $f differs from a fresh generation" >&2
      diff -u "$f" "$root/$f" | head -20 >&2 || true
      stale=1
    fi
  done
  [ "$stale" = 0 ] || { echo "run scripts/gen-bindings.sh and commit the result" >&2; exit 1; }
  echo "gen-bindings --check: ${#generated[@]} generated files are up to date"
fi
