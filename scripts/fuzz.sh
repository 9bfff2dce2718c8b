#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer, nightly) of every parser that reads
# untrusted bytes: GGUF + config + GGUF tokenizer + template, tokenizer.json, chat templates,
# tool calls, JSON schemas and their automaton, the output stream splitter, saved sessions.
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]     # default 60 s, all targets
#
# Environment:
#   FUZZ_RUNS=N            stop a target after N executions (or at the time limit, whichever first)
#   FUZZ_SANITIZER=none    build without AddressSanitizer (about 10x the executions per second on
#                          the parsers, which are safe Rust; the default is address)
#   FUZZ_LOG=DIR           keep each target's whole libFuzzer output, each line prefixed with the
#                          seconds since the target started, in DIR/<target>.log
#
# Corpora live in fuzz/corpus/<target> (seeded from the fixtures by fuzz/seed-corpus.sh);
# crashes land in fuzz/artifacts/<target>. `-rss_limit_mb` makes a memory bomb a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(gguf tokenizer_json template tool_calls json_schema output_parser session_restore)
fi
sanitizer=${FUZZ_SANITIZER:-address}
runs=${FUZZ_RUNS:--1}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz/seed-corpus.sh
[ -z "${FUZZ_LOG:-}" ] || mkdir -p "$FUZZ_LOG"
FUZZ_LOG=${FUZZ_LOG:+$(cd "$FUZZ_LOG" && pwd)}
cd fuzz
cargo +nightly fuzz build -s "$sanitizer"
stamp() {
  local t0 now line
  printf -v t0 '%(%s)T' -1
  while IFS= read -r line; do printf -v now '%(%s)T' -1; echo "$((now - t0)) $line"; done
}
failed=()
for t in "${targets[@]}"; do
  echo "=== $t (${secs}s, runs $runs, sanitizer $sanitizer) $(date +%T)"
  mkdir -p "corpus/$t" "artifacts/$t"
  log=${FUZZ_LOG:+$FUZZ_LOG/$t.log}
  # A finding ends this target's run, not the others'.
  if ! cargo +nightly fuzz run -s "$sanitizer" "$t" "corpus/$t" -- -max_total_time="$secs" \
    -runs="$runs" -rss_limit_mb=2048 -max_len=262144 -timeout=10 -print_final_stats=1 2>&1 |
    stamp | tee "${log:-/dev/null}" | tail -25; then
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]} (fuzz/artifacts/)" >&2; exit 1; }
