#!/usr/bin/env bash
# Builds the Android AAR: libhearth_ffi.so for each ABI with cargo-ndk, then the Gradle library.
# Needs the Android SDK + NDK (ANDROID_NDK_HOME or ANDROID_HOME/ndk/<version>), cargo-ndk, the
# three Rust targets, and a JDK 17. Not runnable on machines without the NDK (nothing links an
# Android .so without its sysroot); there, scripts/check-mobile-libs.sh checks the staticlibs.
#
#   scripts/build-android.sh            release AAR -> android/hearth/build/outputs/aar/
#   PROFILE=debug scripts/build-android.sh   debug .so files (fast, large), release AAR
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
profile="${PROFILE:-release}"
# Must equal minSdk in android/hearth/build.gradle.kts.
api=29
abis=(arm64-v8a armeabi-v7a x86_64)
jnilibs=android/hearth/src/main/jniLibs

need() { command -v "$1" >/dev/null || { echo "build-android: $1 not found. $2" >&2; exit 1; }; }
need cargo-ndk "Install it with: cargo install cargo-ndk"
if [ -z "${ANDROID_NDK_HOME:-}" ] && [ -z "${ANDROID_NDK_ROOT:-}" ] && [ -z "${ANDROID_HOME:-}" ]; then
  echo "build-android: set ANDROID_NDK_HOME (or ANDROID_HOME with an installed NDK)" >&2
  exit 1
fi
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android

# 16 KB page alignment (required on Android 15+ devices with 16 KB pages, and by Google Play).
# Per-target flags: a global RUSTFLAGS would also reach host build scripts.
page="-C link-arg=-Wl,-z,max-page-size=16384"
export CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="$page"
export CARGO_TARGET_ARMV7_LINUX_ANDROIDEABI_RUSTFLAGS="$page"
export CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS="$page"

# The Kotlin side must match the library that is packaged.
scripts/gen-bindings.sh

rm -rf "$jnilibs"
ndk_args=()
for abi in "${abis[@]}"; do ndk_args+=(-t "$abi"); done
cargo_args=(build -p hearth-ffi --lib)
[ "$profile" = release ] && cargo_args+=(--release)
cargo ndk "${ndk_args[@]}" --platform "$api" -o "$jnilibs" "${cargo_args[@]}"

for abi in "${abis[@]}"; do
  so="$jnilibs/$abi/libhearth_ffi.so"
  [ -f "$so" ] || { echo "build-android: $so missing" >&2; exit 1; }
  echo "$so: $(du -h "$so" | cut -f1)"
done

cd android
if [ -x ./gradlew ]; then
  gradle=./gradlew
else
  # The wrapper (gradlew + gradle/wrapper/*.jar) is created once with `gradle wrapper` on a
  # machine that reaches the Gradle distribution server, then committed.
  need gradle "Install Gradle >= 8.13 or add the Gradle wrapper (gradle wrapper --gradle-version 8.14.3)."
  gradle=gradle
fi
"$gradle" :hearth:assembleRelease
ls -l hearth/build/outputs/aar/
