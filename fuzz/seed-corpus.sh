#!/usr/bin/env bash
# Seeds the fuzz corpora from the repository's fixtures and the committed seeds/ (idempotent;
# copies only what is missing).
set -euo pipefail
cd "$(dirname "$0")"
fx=../core/tests/fixtures
seed() { mkdir -p "corpus/$1"; [ -e "corpus/$1/$2" ] || cp "$3" "corpus/$1/$2"; }
for g in "$fx"/gguf/lfm2-dense-h64-q4_0.gguf "$fx"/gguf/lfm2moe-h64-e8k2-q8_0.gguf; do
  seed gguf "$(basename "$g")" "$g"
done
seed tokenizer_json dense-h64.json "$fx/hf/lfm2-dense-h64/tokenizer.json"
python3 - <<'PY'
import json, os
fx = "../core/tests/fixtures"
def put(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    p = f"corpus/{target}/{name}"
    if not os.path.exists(p):
        open(p, "wb").write(data if isinstance(data, bytes) else data.encode())
cfg = json.load(open(f"{fx}/hf/lfm2-dense-h64/tokenizer_config.json"))
if "chat_template" in cfg:
    put("template", "lfm2", "What is C. elegans?\n" + cfg["chat_template"])
put("tool_calls", "pythonic", '[get_weather(city="Paris", days=3), f()]')
put("tool_calls", "json", '[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
put("json_schema", "object", json.dumps({"type": "object", "properties": {"a": {"type": "integer"},
    "b": {"type": "array", "items": {"type": "string"}}}, "required": ["a"]}) + '\n{"a": 1, "b": ["x"]}')
put("json_schema", "anyof", json.dumps({"anyOf": [{"type": "number", "minimum": 0}, {"enum": ["x", None, True]}]}) + "\n-1.5e3")
put("output_parser", "mixed", b"\x03<think>reason</think>answer<|tool_call_start|>[f(a=1)]<|tool_call_end|>tail")
put("session_restore", "plain", json.dumps({"format": 1, "options": {}, "messages": [{"role": "user", "content": "hi"}]}).encode() + b"\x00")
PY
# The committed corpus: inputs the long runs found (minimized with `cargo fuzz cmin`, files up
# to 16 KiB), so a short run starts from their coverage instead of from the fixtures alone.
for d in seeds/*/; do
  [ -d "$d" ] || continue
  t=$(basename "$d")
  mkdir -p "corpus/$t"
  cp -n "$d"* "corpus/$t/" 2>/dev/null || true
done
