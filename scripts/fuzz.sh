#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer, nightly) of every parser that reads
# untrusted bytes: GGUF + config + GGUF tokenizer + template, tokenizer.json, chat templates,
# tool calls, JSON schemas and their automaton, the output stream splitter, saved sessions.
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]     # default 60 s, all targets
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
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz/seed-corpus.sh
cd fuzz
failed=()
for t in "${targets[@]}"; do
  echo "=== $t (${secs}s)"
  mkdir -p "corpus/$t" "artifacts/$t"
  # A finding ends this target's run, not the others'.
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -max_len=262144 -timeout=10 -print_final_stats=1 2>&1 | tail -25; then
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]} (fuzz/artifacts/)" >&2; exit 1; }
