#!/usr/bin/env bash
# The README's "Use from Kotlin" code block must be the code the JVM test runs: the lines between
# `// readme:begin` and `// readme:end` of android/jvm/src/test/kotlin/dev/hearth/ReadmeExampleTest.kt
# (indentation removed). The "Use from Swift" block is syntax-checked by scripts/check-swift.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
test_file=android/jvm/src/test/kotlin/dev/hearth/ReadmeExampleTest.kt
from_test=$(sed -n '/\/\/ readme:begin/,/\/\/ readme:end/p' "$test_file" | sed '1d;$d' | sed 's/^        //')
from_readme=$(awk '/^### Use from Kotlin/{s=1} s&&/^```kotlin/{b=1;next} b&&/^```/{exit} b' README.md)
[ -n "$from_test" ] || { echo "check-readme: no readme markers in $test_file" >&2; exit 1; }
if [ "$from_test" != "$from_readme" ]; then
  echo "check-readme: README 'Use from Kotlin' differs from $test_file:" >&2
  diff -u <(echo "$from_readme") <(echo "$from_test") >&2 || true
  exit 1
fi
echo "check-readme: the README's Kotlin example is the code ReadmeExampleTest runs"
