#!/usr/bin/env python3
"""Checks that the sample apps use only SDK identifiers that the SDK declares.

No Android SDK or Swift compiler exists on the CI machines, so the apps' UI code is never
compiled there (the Kotlin logic is, by the JVM tests). This check is the next best thing: every
identifier the app files use that is not their own must be declared in the SDK sources (generated
bindings + hand-written wrappers) or be a platform name listed in scripts/app-platform-names.txt.

What counts as "used" (comments and string literals removed first):
  Kotlin  `import dev.hearth.X` and `dev.hearth.X` (X must be a top-level SDK declaration);
          `.member` accesses; named arguments `f(name = …)`;
          `SdkType.Member` (Member must be declared by the SDK: nested type, enum entry, companion
          or extension function).
  Swift   `.member` accesses and argument labels `f(label: …)`; `SdkType(label: …)`.
"Declared" means a class/struct/enum/protocol/object, function, property, parameter, enum case
or record field of that name. The check is by name, not by type: a name the app declares itself
(e.g. `text`) passes wherever it is used. It catches SDK names that do not exist (a typo, an API
not merged yet, a renamed field), which is what breaks an app build first.

  scripts/check-app-identifiers.py             check both apps
  scripts/check-app-identifiers.py --self-test also checks that a made-up SDK name fails
"""

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KOTLIN_SDK = [ROOT / "android/hearth/src/main/kotlin/dev/hearth"]
KOTLIN_APP = [ROOT / "android/app/src/main/kotlin"]
SWIFT_SDK = [ROOT / "ios/Sources/Hearth"]
SWIFT_APP = [ROOT / "ios/Examples/HearthChat"]
PLATFORM = ROOT / "scripts/app-platform-names.txt"

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src: str) -> str:
    """Removes comments and string/char literals (keeping `${…}` / `\\(…)` interpolations out too)."""
    src = re.sub(r'"""[\s\S]*?"""', '""', src)
    src = re.sub(r'#"[\s\S]*?"#', '""', src)
    src = re.sub(r"/\*[\s\S]*?\*/", " ", src)
    src = re.sub(r"//[^\n]*", " ", src)
    src = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', src)
    src = re.sub(r"'(?:\\.|[^'\\\n])'", "''", src)
    return src


def files(roots, ext):
    out = []
    for r in roots:
        out += sorted(p for p in r.rglob(f"*.{ext}") if p.is_file())
    return out


DECL_PATTERNS = [
    rf"\b(?:class|interface|object|typealias|struct|enum|protocol|actor|extension)\s+({IDENT})",
    rf"\bfun\s+(?:<[^>]*>\s*)?(?:[\w.<>?, ]+\.)?`?({IDENT})`?\s*\(",
    rf"\bfunc\s+`?({IDENT})`?",
    rf"\b(?:val|var|let)\s+(?:[\w.<>?]+\.)?`?({IDENT})`?",
    rf"\bcase\s+`?({IDENT})`?",
    r"^\s*([A-Z][A-Z0-9_]*)\s*(?:,|;|\(|$)",  # Kotlin enum entries, one per line
    rf",\s*\.?({IDENT})\s*(?=[,\n])",  # `case a, b` continuations
    rf"[{{(,]\s*({IDENT})\s*(?:,\s*({IDENT})\s*)*->",  # lambda parameters
    rf"\{{\s*\[?[^\]\n]*\]?\s*\(?({IDENT})(?:\s*,\s*({IDENT}))*\)?\s+in\b",  # Swift closure parameters
    rf"\bfor\s*\(?\s*\(?({IDENT})(?:\s*,\s*({IDENT}))*",
    rf"\bif\s+(?:let|var)\s+({IDENT})",
    rf"\bguard\s+(?:let|var)\s+({IDENT})",
    rf"\bcase\s+\.?{IDENT}\s*\((?:let\s+)?({IDENT})(?:\s*,\s*(?:let\s+)?({IDENT}))*",
    rf"\blet\s+\(({IDENT})(?:\s*,\s*({IDENT}))*\)",
    rf"\bval\s+\(({IDENT})(?:\s*,\s*({IDENT}))*\)",
    rf"\bcatch\s*\(?\s*(?:let\s+)?({IDENT})",
]


def declared(paths):
    names = set()
    for p in paths:
        src = strip(p.read_text(encoding="utf-8"))
        for pat in DECL_PATTERNS:
            for m in re.finditer(pat, src, re.MULTILINE):
                names.update(g for g in m.groups() if g)
        # Parameters (Swift: external and internal names) of functions, inits and constructors;
        # only in signatures, since a Swift call's `label: value` looks the same.
        for m in re.finditer(rf"\b(?:func\s+(?:`?{IDENT}`?|[^\s(]+)|init[?!]?|fun\s+(?:<[^>]*>\s*)?(?:[\w.<>?, ]+\.)?{IDENT}|class\s+{IDENT}|constructor)\s*(?:<[^>]*>)?\s*\(", src):
            depth, i = 1, m.end()
            while i < len(src) and depth:
                depth += {"(": 1, ")": -1}.get(src[i], 0)
                i += 1
            params = src[m.end() : i - 1]
            for d in re.finditer(
                rf"(?:^|[,(])\s*(?:@\w+\s+)*(?:(?:private|public|internal|override|vararg|val|var|inout|open)\s+)*`?({IDENT})`?(?:\s+`?({IDENT})`?)?\s*:",
                params,
            ):
                names.update(g for g in d.groups() if g)
        # Kotlin enum entries on one line: `enum class Fit { A, B }`, `enum class X(val l: String) { A("a"), … ; }`.
        for m in re.finditer(rf"\benum\s+class\s+{IDENT}[^{{]*\{{([^;}}]*)", src):
            names.update(re.findall(rf"(?:^|,)\s*({IDENT})", m.group(1)))
    return names


def top_level_kotlin(paths):
    """Names a Kotlin `import dev.hearth.X` can refer to: top-level types, functions, properties
    (including extensions, whose import name is the function name)."""
    names = set()
    for p in paths:
        src = strip(p.read_text(encoding="utf-8"))
        for m in re.finditer(
            rf"^(?:(?:public|internal|private|open|sealed|data|enum|abstract|inline|value|suspend|annotation)\s+)*"
            rf"(?:class|interface|object|typealias|fun|val|var)\s+(?:<[^>]*>\s*)?(?:[\w.<>?, ]+\.)?`?({IDENT})`?",
            src,
            re.MULTILINE,
        ):
            names.add(m.group(1))
    return names


def type_members(paths):
    """For `SdkType.Member`: per type name, the names declared inside its body or as an extension
    (`fun SdkType.Companion.member`, `extension SdkType { … }`) — approximated by all names
    declared in the same braces block after `class/enum/struct SdkType`."""
    members = {}
    for p in paths:
        src = strip(p.read_text(encoding="utf-8"))
        for m in re.finditer(rf"\b(?:class|interface|object|struct|enum|protocol|extension)\s+({IDENT})[^{{}};=]*?\{{", src):
            depth, i = 1, m.end()
            while i < len(src) and depth:
                depth += {"{": 1, "}": -1}.get(src[i], 0)
                i += 1
            body = src[m.end() : i]
            names = members.setdefault(m.group(1), set())
            for pat in DECL_PATTERNS:
                for d in re.finditer(pat, body, re.MULTILINE):
                    names.update(g for g in d.groups() if g)
            # Swift initializers' labels.
            for d in re.finditer(r"\binit[?!]?\s*\(", body):
                names.update(re.findall(rf"(?:^|,)\s*`?({IDENT})`?(?:\s+{IDENT})?\s*:", balanced(body, d.end())))
        # Kotlin primary constructors: `data class X(val a: T = …, …)`.
        for m in re.finditer(rf"\bclass\s+({IDENT})\s*(?:<[^>]*>)?\s*\(", src):
            params = balanced(src, m.end())
            names = members.setdefault(m.group(1), set())
            names.update(re.findall(rf"(?:^|,)\s*(?:@\w+\s+)*(?:(?:private|public|internal|override|val|var)\s+)*`?({IDENT})`?\s*:", params))
        for m in re.finditer(rf"\bfun\s+(?:<[^>]*>\s*)?({IDENT})(?:\.Companion)?\.({IDENT})\s*\(", src):
            members.setdefault(m.group(1), set()).add(m.group(2))
        for m in re.finditer(rf"\bval\s+({IDENT})\.({IDENT})", src):
            members.setdefault(m.group(1), set()).add(m.group(2))
    return members


def balanced(src, start):
    """The text from `start` (just after an opening parenthesis) to its closing one."""
    depth, i = 1, start
    while i < len(src) and depth:
        depth += {"(": 1, ")": -1}.get(src[i], 0)
        i += 1
    return src[start : i - 1]


def top_level_args(args, lang):
    """Labels (Swift `label:`) or named arguments (Kotlin `name =`) at the call's own level."""
    flat, depth = [], 0
    for ch in args:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        flat.append(ch if depth == 0 or ch in "([{" else " ")
    flat = "".join(flat)
    sep = r":(?!:)" if lang == "swift" else r"=(?!=)"
    return re.findall(rf"(?:^|,)\s*({IDENT})\s*{sep}", flat)


def usages(src, lang):
    """(line, name, kind) of identifiers an app file takes from elsewhere."""
    out = []

    def add(m, group, kind):
        line = src.count("\n", 0, m.start(group)) + 1
        out.append((line, m.group(group), kind))

    # Import and package lines name packages, not members.
    src = re.sub(r"^\s*(?:import|package)\s[^\n]*", "", src, flags=re.MULTILINE)
    for m in re.finditer(rf"(?<!\.)\.\s*`?({IDENT})`?", src):  # `x.member`, `.case`
        add(m, 1, "member")
    if lang == "kotlin":
        for m in re.finditer(rf"[(,]\s*({IDENT})\s*=(?!=)", src):
            add(m, 1, "argument")
    else:
        for m in re.finditer(rf"[(,]\s*({IDENT})\s*:(?!:)", src):
            add(m, 1, "label")
    return out


def check(lang, sdk_paths, app_paths, platform):
    sdk = declared(sdk_paths)
    app = declared(app_paths)
    members = type_members(sdk_paths)
    # Top-level types the SDK declares (not nested ones like ChatEvent.Text, which the app names
    # qualified, nor platform types the SDK only extends, like Swift's Data).
    sdk_types = set()
    for p in sdk_paths:
        sdk_types.update(
            re.findall(
                rf"^(?:(?:public|internal|open|final|sealed|data|enum|abstract|indirect)\s+)*"
                rf"(?:class|interface|object|struct|enum|protocol)\s+({IDENT})",
                strip(p.read_text(encoding="utf-8")),
                re.MULTILINE,
            )
        )
    sdk_types &= set(members)
    problems = []
    used_sdk = set()
    for p in app_paths:
        raw = p.read_text(encoding="utf-8")
        src = strip(raw)
        rel = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
        if lang == "kotlin":
            top = top_level_kotlin(sdk_paths)
            for m in re.finditer(rf"\bdev\.hearth\.({IDENT})", src):
                name = m.group(1)
                if name == "chat":
                    continue
                line = src.count("\n", 0, m.start(1)) + 1
                if name not in top:
                    problems.append(f"{rel}:{line}: dev.hearth.{name} is not declared in the SDK")
                else:
                    used_sdk.add(name)
        # SdkType.Member and SdkType(label …) must name what that type declares.
        for m in re.finditer(rf"(?<![.\w])({IDENT})\.({IDENT})", src):
            t, name = m.groups()
            if t in sdk_types and t not in app and name not in members[t] and name not in ("Companion", "entries", "self", "init"):
                line = src.count("\n", 0, m.start(2)) + 1
                problems.append(f"{rel}:{line}: {t}.{name} is not declared by {t} in the SDK")
        for m in re.finditer(rf"(?<![.\w])({IDENT})\s*\(", src):
            t = m.group(1)
            if t not in sdk_types or t in app:
                continue
            for label in top_level_args(balanced(src, m.end()), lang):
                if label not in members[t]:
                    line = src.count("\n", 0, m.start(1)) + 1
                    problems.append(f"{rel}:{line}: {t}(…) has no parameter `{label}` in the SDK")
        for line, name, kind in usages(src, lang):
            if name in app:
                continue
            if name in sdk:
                used_sdk.add(name)
                continue
            if name in platform:
                continue
            problems.append(f"{rel}:{line}: {kind} `{name}` is declared neither in the SDK, the app, nor {PLATFORM.name}")
    return problems, used_sdk


def platform_names():
    names = set()
    for line in PLATFORM.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.update(line.split())
    return names


def run(kotlin_app=KOTLIN_APP, swift_app=SWIFT_APP, quiet=False):
    platform = platform_names()
    bad = []
    for lang, sdk_roots, app_roots, ext in (
        ("kotlin", KOTLIN_SDK, kotlin_app, "kt"),
        ("swift", SWIFT_SDK, swift_app, "swift"),
    ):
        sdk_files = files(sdk_roots, ext)
        app_files = files(app_roots, ext)
        if not sdk_files or not app_files:
            bad.append(f"no {lang} files found (SDK {len(sdk_files)}, app {len(app_files)})")
            continue
        problems, used = check(lang, sdk_files, app_files, platform)
        bad += problems
        if not quiet:
            print(f"check-app-identifiers: {lang}: {len(app_files)} app files, {len(used)} SDK names used, {len(problems)} problems")
    return bad


def self_test():
    """A made-up SDK member, named argument, import and label must each be reported."""
    with tempfile.TemporaryDirectory() as d:
        k = Path(d) / "kotlin"
        s = Path(d) / "swift"
        k.mkdir()
        s.mkdir()
        (k / "Bad.kt").write_text(
            "import dev.hearth.NoSuchThing\nimport dev.hearth.GenerateOptions\n"
            "fun f(s: dev.hearth.ChatSession) { s.streamNowhere(); GenerateOptions(noSuchField = 1) }\n"
        )
        (s / "Bad.swift").write_text("import Hearth\nfunc f(s: ChatSession) { _ = s.streamNowhere(to: \"x\"); _ = GenerateOptions(noSuchLabel: 1, text: 2) }\nlet text = 1\n")
        bad = "\n".join(run(kotlin_app=[k], swift_app=[s], quiet=True))
        want = ["NoSuchThing", "streamNowhere", "noSuchField", "noSuchLabel", "parameter `text`"]
        missed = [w for w in want if w not in bad]
        if missed:
            print(f"check-app-identifiers --self-test: not reported: {missed}\n{bad}", file=sys.stderr)
            return 1
        print(f"check-app-identifiers --self-test: all {len(want)} made-up names reported")
    return 0


def main(argv):
    if "--self-test" in argv and self_test():
        return 1
    bad = run()
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print(f"check-app-identifiers: {len(bad)} problems", file=sys.stderr)
        return 1
    print("check-app-identifiers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
