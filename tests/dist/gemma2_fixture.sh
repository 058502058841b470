# Gemma 2 (Gemma2ForCausalLM) under mpirun: the tiny Gemma 2 trained for 2 steps on 1 rank, tp2, pp2 (one layer per
# stage, the tied head a mirror on the last stage), dp2 with ZeRO-1, tp2 with train.recompute (bit for bit the tp2
# run) and tp2 x pp2; each run's parameters after step 2, exported to Hugging Face format (gains as offsets from 1),
# equal the 1-rank run's (tests/tools/check_params), and the tiny-g2 fixture's step2.safetensors when it is present
# (tests/fixtures/tiny-g2, scripts/make_gemma2_fixture.py). Without the fixture the model is a random-init tiny
# Gemma 2 of the fixture's shapes (model.config) on tiny-a's pairs. Also: a checkpoint saved under tp2 x dp2 resumes
# on one rank; every rank's memory plan equals its allocation and its step-1 communication the formulas; bf16
# matmuls under tp2 train to finite losses; `simpo_dist score` of the exported model equals a float64 Python
# forward of transformers' Gemma 2 written from its formulas.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
G2="$FIX/tiny-g2"
if [ -f "$G2/expected.json" ]; then
  echo "tiny-g2 fixture present: parameters also against its step2.safetensors"
else
  echo "tiny-g2 fixture absent: HF comparison skipped (random-init tiny Gemma 2, layouts against the 1-rank run)"
  G2=""
fi
# g2_setup NAME MICRO: $TMP/NAME as the current directory with run.yaml (micro_batch_pairs MICRO) and base.yaml
g2_setup() {
  rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cd "$TMP/$1"
  if [ -n "$G2" ]; then
    cp -r "$G2/." .
    sed -i "s/micro_batch_pairs: 2/micro_batch_pairs: $2/" run.yaml
  else
    cp "$FIX/tiny-a/pairs.jsonl" .
    cat > run.yaml <<YAML
model:
  seed: 3
  config: {model_type: gemma2, vocab_size: 384, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2,
           num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, query_pre_attn_scalar: 24,
           sliding_window: 8, layer_types: [sliding_attention, full_attention], attn_logit_softcapping: 3.0,
           final_logit_softcapping: 4.0, hidden_activation: gelu_pytorch_tanh, rms_norm_eps: 1.0e-6,
           max_position_embeddings: 256, initializer_range: 0.2, tie_word_embeddings: true}
data: {train: pairs.jsonl, max_length: 256, max_prompt_length: 128, shuffle: false}
loss: {type: simpo, beta: 2.0, gamma_beta_ratio: 0.5}
optim: {lr: 1.0e-3, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: 0.01, max_grad_norm: 1.0, schedule: constant, warmup_steps: 0}
train: {global_batch_pairs: 6, micro_batch_pairs: $2, max_steps: 2, seed: 0}
checkpoint: {dir: out, every_steps: 2}
log: {every_steps: 1}
YAML
  fi
  cp run.yaml base.yaml
}
# g2_case NAME NP MICRO PARALLEL [recompute]: the layout against the 1-rank run and, when present, the fixture's
# step 2 (dist.bash)
REF=""
g2_case() { layout_case g2_setup "$1" "$2" "$3" "$4" "${G2:+$G2/step2.safetensors}" "${5:-}"; }
g2_case one 1 2 "{tp: 1}"
REF="$TMP/one/hf/model.safetensors"
[ -f "$REF" ] && ok "the 1-rank run exported" || bad "the 1-rank run exported nothing"
grep -qE '"model_type":[[:space:]]*"gemma2"' "$TMP/one/hf/config.json" && grep -q Gemma2ForCausalLM "$TMP/one/hf/config.json" \
  && ok "exported config.json is Gemma2ForCausalLM" || bad "exported config.json: $(head -c 300 "$TMP/one/hf/config.json")"
# An independent float64 forward in Python of transformers' Gemma2ForCausalLM (eager; the formulas of
# modeling_gemma2) on the exported HF directory: its per-pair log-probs equal `simpo_dist score`'s (import adds 1 to
# the exported gains, so this also checks the gain convention end to end), 1e-6 relative.
cat > "$TMP/g2_ref.py" <<'PY'
import json, math, struct, sys
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
raw = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); base = 8 + n
W = {}
for k, v in hdr.items():
    if k == "__metadata__": continue
    a, b = v["data_offsets"]; assert v["dtype"] == "F32"
    flat = struct.unpack("<%df" % ((b - a) // 4), raw[base + a:base + b])
    sh = v["shape"]
    W[k] = [list(flat[i * sh[1]:(i + 1) * sh[1]]) for i in range(sh[0])] if len(sh) == 2 else list(flat)
C, L, NH, NKV, HD = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
sc = cfg["query_pre_attn_scalar"] ** -0.5
acap, fcap, win, lt = cfg["attn_logit_softcapping"], cfg["final_logit_softcapping"], cfg["sliding_window"], cfg["layer_types"]
def lin(x, w): return [sum(a * b for a, b in zip(x, row)) for row in w]
def norm(x, w):
    r = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * r * (1.0 + g) for v, g in zip(x, w)]
def gelu(x): return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
inv = [1.0 / theta ** (2 * i / HD) for i in range(HD // 2)]
def rope(v, p):
    out = []
    for h in range(len(v) // HD):
        x = v[h * HD:(h + 1) * HD]; half = HD // 2
        c = [math.cos(p * f) for f in inv] * 2; s = [math.sin(p * f) for f in inv] * 2
        rh = [-x[i + half] for i in range(half)] + [x[i] for i in range(half)]
        out += [x[i] * c[i] + rh[i] * s[i] for i in range(HD)]
    return out
def seq_logps(ids):
    T = len(ids)
    hs = [[v * math.sqrt(C) for v in W["model.embed_tokens.weight"][t]] for t in ids]
    for l in range(L):
        P = "model.layers.%d." % l
        xn = [norm(h, W[P + "input_layernorm.weight"]) for h in hs]
        q = [rope(lin(x, W[P + "self_attn.q_proj.weight"]), p) for p, x in enumerate(xn)]
        k = [rope(lin(x, W[P + "self_attn.k_proj.weight"]), p) for p, x in enumerate(xn)]
        v = [lin(x, W[P + "self_attn.v_proj.weight"]) for x in xn]
        att = []
        for i in range(T):
            o = []
            for h in range(NH):
                g = h // (NH // NKV)
                s = []
                for j in range(T):
                    ok = j <= i and (lt[l] != "sliding_attention" or win is None or j > i - win)
                    if not ok: s.append(-math.inf); continue
                    x = sum(q[i][h * HD + e] * k[j][g * HD + e] for e in range(HD)) * sc
                    if acap: x = math.tanh(x / acap) * acap
                    s.append(x)
                m = max(s); e = [math.exp(x - m) for x in s]; z = sum(e)
                o += [sum(e[j] / z * v[j][g * HD + dd] for j in range(T)) for dd in range(HD)]
            att.append(o)
        ao = [norm(lin(a, W[P + "self_attn.o_proj.weight"]), W[P + "post_attention_layernorm.weight"]) for a in att]
        hs = [[a + b for a, b in zip(h, x)] for h, x in zip(hs, ao)]
        pre = [norm(h, W[P + "pre_feedforward_layernorm.weight"]) for h in hs]
        mo = []
        for x in pre:
            gg, uu = lin(x, W[P + "mlp.gate_proj.weight"]), lin(x, W[P + "mlp.up_proj.weight"])
            mo.append(norm(lin([gelu(a) * b for a, b in zip(gg, uu)], W[P + "mlp.down_proj.weight"]), W[P + "post_feedforward_layernorm.weight"]))
        hs = [[a + b for a, b in zip(h, x)] for h, x in zip(hs, mo)]
    hs = [norm(h, W["model.norm.weight"]) for h in hs]
    E = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    out = []
    for t in range(T - 1):
        lg = lin(hs[t], E)
        if fcap: lg = [math.tanh(x / fcap) * fcap for x in lg]
        m = max(lg); lse = m + math.log(sum(math.exp(x - m) for x in lg))
        out.append(lg[ids[t + 1]] - lse)
    return out
for line in open(sys.argv[2]):
    p = json.loads(line)
    r = []
    for resp in ("chosen_ids", "rejected_ids"):
        ids = p["prompt_ids"] + p[resp]
        lp = seq_logps(ids)[len(p["prompt_ids"]) - 1:]
        r.append(sum(lp))
    print(json.dumps({"chosen_logp": r[0], "rejected_logp": r[1]}))
PY
if "$BIN" score --model "$TMP/one/hf" --data "$TMP/one/pairs.jsonl" > "$TMP/one/score.jsonl" 2> "$TMP/one/score.log" \
   && python3 "$TMP/g2_ref.py" "$TMP/one/hf" "$TMP/one/pairs.jsonl" > "$TMP/one/ref.jsonl"; then
  worst=$(python3 -c '
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) > 0
print(max(abs(x[k] - y[k]) / abs(y[k]) for x, y in zip(a, b) for k in ("chosen_logp", "rejected_logp")))' \
    "$TMP/one/score.jsonl" "$TMP/one/ref.jsonl")
  awk -v w="$worst" 'BEGIN {exit !(w == w + 0 && w <= 1e-6)}' && ok "score = float64 Python Gemma 2 (worst $worst)" \
    || bad "score vs the float64 Python Gemma 2: worst relative difference '$worst'"
else bad "score or the Python reference failed: $(tail -2 "$TMP/one/score.log")"; fi
g2_case tp2 2 1 "{tp: 2}"
g2_case pp2 2 1 "{pp: 2}"
g2_case dp2_zero1 2 1 "{zero: 1}"
g2_case dp2_zero2 2 1 "{zero: 2}" # the tied embedding's gradient whole for the step, the layers' in buckets
g2_case dp2_zero3 2 1 "{zero: 3}" # the weights sharded, each layer's gathered before its forward and backward
g2_case tp2_rc 2 1 "{tp: 2}" rc
cmp -s "$TMP/tp2_rc/hf/model.safetensors" "$TMP/tp2/hf/model.safetensors" && ok "tp2 recompute = tp2 bit for bit" \
  || bad "tp2 recompute differs from tp2"
g2_case tp2_pp2 4 1 "{tp: 2, pp: 2}"
g2_case pp2_rc_zero1 4 1 "{pp: 2, zero: 1}" rc
# a checkpoint saved under dp2 x tp2 after step 1 resumes on one rank
g2_setup resume 1; echo "parallel: {tp: 2}" >> run.yaml
$MPI 4 "$BIN" run.yaml --stop-at-step 1 2> a.log && "$BIN" base.yaml 2> b.log \
  && "$BIN" export --checkpoint out --out hf 2> e.log && "$TOOLS/check_params" hf "$REF" \
  && ok "dp2 tp2 -> 1 rank resume = 1 rank" || bad "dp2 tp2 -> 1 rank resume: $(tail -2 a.log b.log e.log)"
# bf16 matmuls under tp2: trains, finite losses
g2_setup bf16 1; sed -i -e "s/^model: {/model: {dtype: bf16, /" -e "s/^model:$/model:\n  dtype: bf16/" run.yaml; echo "parallel: {tp: 2}" >> run.yaml
if grep -q "dtype: bf16" run.yaml && $MPI 2 "$BIN" run.yaml 2> train.log; then
  l2=$(metric out/metrics.jsonl 2 loss)
  awk -v x="$l2" 'BEGIN {exit !(x == x + 0 && x > 0 && x < 100)}' && ok "bf16 tp2 trains (step 2 loss $l2)" \
    || bad "bf16 tp2 step 2 loss '$l2'"
else bad "bf16 tp2 failed: $(tail -3 train.log)"; fi
# bf16 on two data-parallel ranks: ZeRO-1 shards the fp32 master weights (the tied embedding, read in fp32 by the
# lookup and as the LM head's bf16 copy; four gains per layer) and equals the replicated ZeRO-0 run bit for bit; ZeRO-3
# (the bf16 copy sharded, the tied head gathered once a step, the layers before their forward and backward) equals
# ZeRO-2
for z in 0 1 2 3; do
  g2_setup bf16_z$z 1; sed -i -e "s/^model: {/model: {dtype: bf16, /" -e "s/^model:$/model:\n  dtype: bf16/" run.yaml
  echo "parallel: {zero: $z}" >> run.yaml
  SIMPO_CHECK_WEIGHTS16=1 $MPI 2 "$BIN" run.yaml 2> train.log && ok "bf16 dp2 zero$z trains" || bad "bf16 dp2 zero$z: $(tail -3 train.log)"
  check_log "bf16 dp2 zero$z" train.log
done
grep -q "master weights: sharded" "$TMP/bf16_z1/train.log" && ok "bf16 dp2 zero1: sharded master weights" \
  || bad "zero1 log: $(grep 'master weights' "$TMP/bf16_z1/train.log")"
for g in param exp_avg exp_avg_sq; do
  h5diff -q "$TMP/bf16_z0/out/step-00000002/index.h5" "$TMP/bf16_z1/out/step-00000002/index.h5" /$g /$g \
    && ok "Gemma 2 bf16 zero1 (sharded master weights) = zero0 (/$g)" || bad "Gemma 2 bf16 zero1 differs in /$g"
  h5diff -q "$TMP/bf16_z2/out/step-00000002/index.h5" "$TMP/bf16_z3/out/step-00000002/index.h5" /$g /$g \
    && ok "Gemma 2 bf16 zero3 = zero2 (/$g)" || bad "Gemma 2 bf16 zero3 differs from zero2 in /$g"
done
finish
