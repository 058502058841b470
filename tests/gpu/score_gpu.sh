# `simpo_dist score --device cuda` (label gpu; exit 77, skipped, without a CUDA build or device): the tiny-a fixture's
# per-pair log-probs at the initial weights from the GPU, fp32 within 1e-5 relative of the HF float64 reference
# (the fixture README's rule) and of the CPU's, bf16 within the bf16 bounds (4u, u = 2^-9; tests/model/fixture_bf16.h).
source "$(dirname "$0")/../cli/lib.bash"
if ! nvidia-smi -L >/dev/null 2>&1 || ! "$BIN" --version 2>&1 | grep -q "cuda"; then
  echo "SKIPPED: no CUDA device (or no CUDA build)"; rm -rf "$TMP"; exit 77
fi
cp -r "$FIX/tiny-a/." "$TMP/"; cd "$TMP"
close() { # GOT WANT_JSONL|fixture RTOL: every pair's log-probs within RTOL relative
  python3 - "$1" "$2" "$3" "$FIX/tiny-a/expected.json" <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[4]))["pairs"] if sys.argv[2] == "fixture" else [json.loads(l) for l in open(sys.argv[2])]
d = [abs(g[k] - w[k]) / abs(w[k]) for g, w in zip(got, want) for k in ("chosen_logp", "rejected_logp")]
print(f"worst {max(d):.3g} relative")
sys.exit(not (len(got) == 6 and max(d) <= float(sys.argv[3])))
PY
}
"$BIN" score --model model --data pairs.jsonl --device cpu --out cpu.jsonl 2>/dev/null || bad "score on the CPU"
if "$BIN" score --model model --data pairs.jsonl --device cuda --out gpu.jsonl 2> gpu.err; then ok "score --device cuda"
else bad "score --device cuda failed: $(tail -3 gpu.err)"; fi
grep -q "on the cuda backend (fp32)" gpu.err && ok "it ran on the cuda backend" || bad "backend: $(cat gpu.err)"
close gpu.jsonl fixture 1e-5 && ok "fp32 GPU log-probs = the fixture" || bad "fp32 GPU vs fixture"
close gpu.jsonl cpu.jsonl 1e-5 && ok "fp32 GPU log-probs = the CPU's" || bad "fp32 GPU vs CPU"
"$BIN" score --model model --data pairs.jsonl --device cuda --dtype bf16 --out g16.jsonl 2> g16.err \
  || bad "score --dtype bf16 on cuda failed: $(tail -3 g16.err)"
close g16.jsonl fixture 0.0078125 && ok "bf16 GPU log-probs within bf16 bounds of the fixture" || bad "bf16 GPU vs fixture"
finish
