#!/usr/bin/env bash
# Hearth vs llama.cpp on the same full-size synthetic GGUFs (`hearth synth`), run alternately
# (A B A B ...) so machine noise hits both engines alike; prints every round's ratios and the
# medians. llama.cpp's `llama-bench` is built from the llama-cpp-python sdist's vendored
# llama.cpp into $LLAMA_DIR (outside git: nothing of llama.cpp is committed).
#
#   scripts/bench-vs-llamacpp.sh                 # defaults below
#   ROUNDS=5 THREADS="1 2" PP=512 TG=128 scripts/bench-vs-llamacpp.sh
#   SETS="lfm2.5-1.2b:q4_0" HEARTH=target/debug/hearth scripts/bench-vs-llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_DIR=${LLAMA_DIR:-/work/llamacpp}
MODELS=${MODELS:-/work/models}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-"1 2"}
PP=${PP:-128}
TG=${TG:-64}
# preset:quant pairs (hearth synth names)
SETS=${SETS:-"lfm2.5-1.2b:q4_0 lfm2.5-1.2b:q4_k_m lfm2-8b-a1b:q4_0 lfm2-8b-a1b:q4_k_m"}
VERSION=0.3.36

bench_bin="$LLAMA_DIR/build/bin/llama-bench"
if [ ! -x "$bench_bin" ]; then
  mkdir -p "$LLAMA_DIR"
  (cd "$LLAMA_DIR" &&
    pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d . &&
    tar xzf "llama_cpp_python-$VERSION.tar.gz" &&
    cmake -S "llama_cpp_python-$VERSION/vendor/llama.cpp" -B build -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF &&
    cmake --build build --target llama-bench -j "$(nproc)")
fi

# HEARTH=path/to/hearth uses an existing binary instead of a release build.
if [ -z "${HEARTH:-}" ]; then
  cargo build --release -p hearth-cli
  HEARTH="${CARGO_TARGET_DIR:-target}/release/hearth"
fi
hearth=$HEARTH
mkdir -p "$MODELS"

# llama-bench JSON -> "pp_tok/s tg_tok/s" (a file llama.cpp cannot load fails here: its log is
# kept in /tmp/llama-bench.log)
llama_once() {
  "$bench_bin" -m "$1" -p "$PP" -n "$TG" -t "$2" -r 1 -o json 2>/tmp/llama-bench.log | python3 -c '
import json, sys
rows = json.load(sys.stdin)
pp = [r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0]
print(pp[0], tg[0])'
}

# hearth bench's last line ends with "prefill decode"
hearth_once() {
  RAYON_NUM_THREADS="$2" "$hearth" bench "$1" --prompt-tokens "$PP" --gen-tokens "$TG" \
    --repeats 1 | tail -1 | awk '{print $(NF-1), $NF}'
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

for set in $SETS; do
  preset=${set%%:*} quant=${set##*:}
  model="$MODELS/synth-$preset-$quant.gguf"
  [ -f "$model" ] || "$hearth" synth --preset "$preset" --quant "$quant" -o "$model"
  for t in $THREADS; do
    echo "=== $preset $quant, $t thread(s), pp$PP / tg$TG"
    printf '%-6s %12s %12s %12s %12s %9s %9s\n' round llama-pp llama-tg hearth-pp hearth-tg pp-ratio tg-ratio
    : >/tmp/bench-ratios.$$
    for r in $(seq "$ROUNDS"); do
      read -r lpp ltg < <(llama_once "$model" "$t")
      read -r hpp htg < <(hearth_once "$model" "$t")
      rp=$(awk -v a="$hpp" -v b="$lpp" 'BEGIN {printf "%.3f", a / b}')
      rt=$(awk -v a="$htg" -v b="$ltg" 'BEGIN {printf "%.3f", a / b}')
      printf '%-6s %12.1f %12.1f %12.1f %12.1f %9s %9s\n' "$r" "$lpp" "$ltg" "$hpp" "$htg" "$rp" "$rt"
      echo "$rp $rt" >>/tmp/bench-ratios.$$
    done
    echo "median ratio (hearth / llama.cpp): prefill $(cut -d' ' -f1 /tmp/bench-ratios.$$ | median)," \
      "decode $(cut -d' ' -f2 /tmp/bench-ratios.$$ | median)"
    rm -f /tmp/bench-ratios.$$
  done
done
