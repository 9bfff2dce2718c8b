#!/usr/bin/env bash
# Kotlin tests on the JVM: builds the host library, regenerates the JVM-flavour bindings, and
# runs the Maven project android/jvm (generated bindings + the Android library's hand-written
# Kotlin, tests in android/jvm/src/test/kotlin) with JNA loading target/debug/libhearth_ffi.so.
#
# Maven resolves its plugins and dependencies from Maven Central on the first run; later runs are
# offline (-o) once android/jvm/target/.maven-resolved exists. MAVEN_ONLINE=1 forces a resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
command -v mvn >/dev/null || { echo "test-kotlin: mvn not found (apt-get install maven)" >&2; exit 1; }

# Also checks that the committed Android-flavour file matches; regenerates both flavours.
scripts/gen-bindings.sh
libdir=$(cd "$CARGO_TARGET_DIR/debug" && pwd)

cd android/jvm
stamp=target/.maven-resolved
mode=(-o)
if [ ! -f "$stamp" ] || [ "${MAVEN_ONLINE:-0}" = 1 ]; then mode=(); fi
mvn -B -ntp "${mode[@]}" test -Dhearth.lib.dir="$libdir"
mkdir -p target && touch "$stamp"
