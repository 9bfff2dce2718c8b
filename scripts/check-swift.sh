#!/usr/bin/env bash
# Syntax check for every .swift file under ios/ (hand-written and generated, Package.swift too,
# and the sample app ios/Examples/HearthChat: App/, Logic/, Views/)
# with the tree-sitter Swift grammar: no Swift compiler exists on Linux machines here, so this
# catches broken syntax only, not type errors. Fails on any ERROR or MISSING node.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-target}/swift-check-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tree-sitter==0.26.1 tree-sitter-swift==0.7.4
fi
files=()
while IFS= read -r -d '' f; do files+=("$f"); done \
  < <(find ios -name '*.swift' -not -path '*/.build/*' -print0 | sort -z)
# The sample app must be among them (a moved folder would otherwise drop out of the check).
for d in ios/Examples/HearthChat/App ios/Examples/HearthChat/Logic ios/Examples/HearthChat/Views; do
  printf '%s\n' "${files[@]}" | grep -q "^$d/" || { echo "check-swift: no Swift files in $d" >&2; exit 1; }
done
# The README's "Use from Swift" example, as the body of an async throwing function.
readme_swift="$(mktemp -d)/ReadmeExample.swift"
trap 'rm -rf "$(dirname "$readme_swift")"' EXIT
{
  echo 'func readmeExample() async throws {'
  awk '/^### Use from Swift/{s=1} s&&/^```swift/{b=1;next} b&&/^```/{exit} b' README.md
  echo '}'
} >"$readme_swift"
[ "$(wc -l <"$readme_swift")" -gt 2 ] || { echo "check-swift: no Swift block in README.md" >&2; exit 1; }
files+=("$readme_swift")
"$venv/bin/python" - "${files[@]}" <<'PY'
"""Parses Swift files with tree-sitter-swift; prints every ERROR/MISSING node, exits 1 if any."""

import re
import sys

import tree_sitter_swift
from tree_sitter import Language, Parser


def problems(tree):
    """Yields (line, column, description) for each syntax error in the tree."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            yield node.start_point.row + 1, node.start_point.column + 1, f"missing {node.type}"
        elif node.type == "ERROR":
            yield node.start_point.row + 1, node.start_point.column + 1, "syntax error"
        # Only descend where an error is known to be.
        stack.extend(c for c in node.children if c.has_error or c.is_missing)


# tree-sitter-swift 0.7 cannot parse `#if swift(>=5.8)` around an attribute, which uniffi
# emits (`@_documentation(visibility: private)`); swiftc accepts it. Directive lines are
# blanked (line numbers kept), so every branch is checked as plain code.
DIRECTIVE = re.compile(rb"^[ \t]*#(if|elseif|else|endif)\b[^\n]*", re.MULTILINE)
# Nor a closure whose body is the empty tuple, `{ () }`, which uniffi emits for foreign-trait
# methods returning nothing; it becomes the equivalent `{ }` (same length is not needed: the
# pattern never spans lines).
UNIT_CLOSURE = re.compile(rb"\{ \(\) \}")


def normalize(src):
    return UNIT_CLOSURE.sub(b"{ }", DIRECTIVE.sub(b"", src))


def main(paths):
    if not paths:
        print("check-swift: no .swift files given", file=sys.stderr)
        return 1
    parser = Parser(Language(tree_sitter_swift.language()))
    bad = 0
    for path in paths:
        with open(path, "rb") as f:
            tree = parser.parse(normalize(f.read()))
        found = list(problems(tree))
        for line, col, what in found:
            print(f"{path}:{line}:{col}: {what}")
        bad += bool(found)
        print(f"{'FAIL' if found else 'ok  '} {path}")
    print(f"check-swift: {len(paths) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
PY
