#!/usr/bin/env bash
# tokenizer_bench.sh — our C tokenizer vs Hugging Face `tokenizers` on the same ~20 MB text, single-threaded.
# Usage: bash bench/tokenizer_bench.sh [TOKENIZER_DIR] [TEXT_FILE] [TARGET_MB=20] [REPEATS=3] [docs|whole]
# Defaults: third_party/tokenizers/llama3 and a text made of the repository's README.md and docs/*.md.
# Needs build/tokenizer_bench (cmake --build build --target tokenizer_bench) or TOKENIZER_BENCH=path; the HF side
# needs python3 with `tokenizers` (skipped with a note when it is absent). Prints both JSON lines and the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tok=${1:-$root/third_party/tokenizers/llama3}
text=${2:-}
mb=${3:-20}
reps=${4:-3}
mode=${5:-docs}
bin=${TOKENIZER_BENCH:-$root/build/tokenizer_bench}
[ -x "$bin" ] || bin=$root/build/bench/tokenizer_bench
if [ ! -x "$bin" ]; then
  echo "tokenizer_bench.sh: no tokenizer_bench binary (build it: cmake --build build --target tokenizer_bench)" >&2
  exit 1
fi
tmp=""
if [ -z "$text" ]; then
  tmp=$(mktemp /tmp/tokbench.XXXXXX)
  cat "$root/README.md" "$root"/docs/*.md > "$tmp"
  text=$tmp
fi
trap '[ -n "$tmp" ] && rm -f "$tmp"' EXIT
c_json=$("$bin" "$tok" "$text" "$mb" "$reps" "$mode")
echo "$c_json"
# The peer: Python's `tokenizers` when installed (the GPU machine has it), else the same Rust library through its
# node binding (fetched once from the npm registry into an ignored folder; SIMPO_BENCH_NO_FETCH=1 prevents it).
node_dir=$root/third_party/bench-node
if python3 -c 'import tokenizers' 2>/dev/null; then
  hf_json=$(python3 "$root/bench/hf_tokenizer_bench.py" "$tok" "$text" "$mb" "$reps" "$mode")
elif command -v node >/dev/null && { [ -d "$node_dir/node_modules/@anush008/tokenizers" ] ||
     { [ "${SIMPO_BENCH_NO_FETCH:-0}" != 1 ] && command -v npm >/dev/null &&
       npm install --silent --prefix "$node_dir" @anush008/tokenizers@0.6.0 >/dev/null 2>&1; }; }; then
  hf_json=$(NODE_PATH=$node_dir/node_modules node "$root/bench/hf_tokenizer_bench.js" "$tok" "$text" "$mb" "$reps" "$mode")
else
  echo "tokenizer_bench.sh: neither python3 'tokenizers' nor node + @anush008/tokenizers: HF comparison skipped" >&2
  exit 0
fi
echo "$hf_json"
python3 - "$c_json" "$hf_json" <<'PY'
import json, sys
c, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = "same token count" if c["tokens"] == h["tokens"] else "TOKEN COUNTS DIFFER (%d vs %d)" % (c["tokens"], h["tokens"])
print(json.dumps({"ratio_c_over_hf": round(c["mb_per_s"] / h["mb_per_s"], 3), "c_mb_per_s": c["mb_per_s"],
                  "hf_mb_per_s": h["mb_per_s"],
                  "ratio_cpu_time": round(c["mb_per_s_cpu"] / h["mb_per_s_cpu"], 3), "tokens": same}))
PY
