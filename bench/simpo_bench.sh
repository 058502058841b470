#!/usr/bin/env bash
# simpo_bench.sh — one SimPO training step of simpo_dist against the PyTorch peer (bench/peer/torch_simpo.py, a
# copy of ../shared/bench/torch_simpo.py), the same work in the same call: random-init Llama shapes, `pairs`
# preference pairs of 2048 tokens each side (first quarter prompt), AdamW as the peer's torch.optim.AdamW defaults
# (weight decay 0.01, no gradient clipping: optim.max_grad_norm 0; the trainer still forms the gradient norm for its
# log and its non-finite check), lr 1e-6, beta 2.5, gamma 1.375. --loss dpo runs DPO instead (beta 0.01, summed
# log-probs), as the peer's `torch_simpo.py --dpo` does, except that simpo_dist reads the reference model's log-probs
# precomputed in the pairs (random numbers here) where the peer runs a frozen bf16 reference model in every step:
# the SimPO paper's runtime comparison (DPO costs the peer ~30% more time than SimPO; simpo_dist's DPO should cost
# what its SimPO costs).
#
# Usage: bash bench/simpo_bench.sh [--shapes "1b 8b-4l"] [--loss simpo|dpo] [--steps N=5] [--warm W=2] [--dtype fp32|bf16]
#                                  [--recompute] [--recompute-layers N] [--recompute-auto] [--no-weight-cache | --weight-cache]
#                                  [--lmhead-cache | --no-lmhead-cache] [--recompute-activation] [--recompute-norm]
#                                  [--bf16-storage autocast|exact] [--no-prefix-sharing] [--peer] [--peer-eager]
#                                  [--device cuda|cpu] [--out DIR]
# Shapes: 1b (Llama-3.2-1B, 4 pairs), 8b-4l (Llama-3-8B width, 4 layers, 2 pairs), tiny (a CPU smoke test,
# 4 pairs of 64 tokens). Needs build/simpo_dist (SIMPO_DIST=path overrides). --peer also runs the torch.compile
# peer (python: PEER_PY, default /opt/torch/.venv/bin/python3 when present, else python3; --peer-eager adds the
# eager run). Prints one JSON line per run and, with --peer, one with the ratios:
#   impl, shape, params, pairs, seqlen, step_s (mean of the timed steps), tok_s (chosen + rejected tokens, prompts
#   included, as the peer counts), tflops and mfu (matmul FLOPs actually done, formula below, over the step time
#   and the dense bf16 peak PEAK_TFLOPS, default 989 for the H100 SXM datasheet), peak_gib, planned_gib (the
#   trainer's memory plan of rank 0) and the settings (loss_type, dtype, recompute, weight / LM-head caches, prefix sharing,
#   ...; lmhead_cache_rows "kept/all" where train.lmhead_cache: auto kept a partial cache; adamw_overlap: AdamW
#   inside the backward, SIMPO_ADAMW_OVERLAP=1, taken).
# Matmul FLOPs of one step (model FLOPs, recomputation not counted): for every token the layers see (under
# data.prefix_sharing, the default, each pair's prompt once: 2 x pairs x (seq - seq / 4) + pairs x seq / 4), per layer
#   2 * (C*(NH+2*NKV)*HD + NH*HD*C + 3*C*FF) forward, plus causal attention 2 * 2 * sum_s(s*(s+1)/2) * NH*HD
#   per layer over sequences (less the rejected sequences' prompt queries, p*(p+1)/2 per pair with p = seq / 4,
#   where attention runs in the layers' rows: prefix sharing, CUDA in the bf16 mode, version 4); the LM head
#   2 * C * V on the rows that predict a response token only (simpo_dist never forms logits elsewhere; the peer
#   forms them on every row, its count is the same formula on all rows);
#   backward = 2 x forward.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
loss=simpo; shapes="1b 8b-4l"; steps=5; warm=2; dtype=fp32; recompute=false; rlayers=0; storage=autocast; wcache=auto; hcache=auto; actrc=false; normrc=false; share=true; peer=0; peer_eager=0; device=cuda; out=""
while [ $# -gt 0 ]; do
  case $1 in
    --shapes) shapes=$2; shift 2 ;;
    --loss) loss=$2; shift 2 ;; # simpo (default) or dpo: the peer's --dpo comparison (below)
    --steps) steps=$2; shift 2 ;;
    --warm) warm=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --recompute) recompute=true; shift ;;
    --recompute-layers) recompute=true; rlayers=$2; shift 2 ;; # train.recompute_layers: each stage's first N
    --recompute-auto) recompute=auto; shift ;; # train.recompute: auto (the budget: SIMPO_DEVICE_MEMORY_GIB or the GPU's)
    --no-weight-cache) wcache=false; shift ;; # train.bf16_weight_cache: false (the memory-lean bf16 setting)
    --weight-cache) wcache=true; shift ;;     # train.bf16_weight_cache: true (default auto: kept unless short)
    --lmhead-cache) hcache=true; shift ;;     # train.lmhead_cache: true (logits kept for the backward)
    --no-lmhead-cache) hcache=false; shift ;; # train.lmhead_cache: false (default auto: kept where they fit)
    --recompute-activation) actrc=true; shift ;; # train.recompute_activation: true (the MLP's hidden state remade)
    --recompute-norm) normrc=true; shift ;;   # train.recompute_norm: true (ln1, ln2 remade)
    --bf16-storage) storage=$2; shift 2 ;;    # model.bf16_storage (default autocast)
    --no-prefix-sharing) share=false; shift ;; # data.prefix_sharing: false (every sequence's prompt in the layers)
    --peer) peer=1; shift ;;
    --peer-eager) peer_eager=1; peer=1; shift ;;
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "simpo_bench.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
case $loss in simpo|dpo) ;; *) echo "simpo_bench.sh: --loss $loss: expected simpo or dpo" >&2; exit 2 ;; esac
bin=${SIMPO_DIST:-$root/build/simpo_dist}
[ -x "$bin" ] || { echo "simpo_bench.sh: no $bin (build first, or set SIMPO_DIST)" >&2; exit 1; }
work=${out:-$(mktemp -d /tmp/simpo_bench.XXXXXX)}
mkdir -p "$work"
peak=${PEAK_TFLOPS:-989}

# shape -> "C FF L NH NKV V tied pairs seqlen"
shape_args() {
  case $1 in
    1b) echo "2048 8192 16 32 8 128256 true 4 2048" ;;
    8b-4l) echo "4096 14336 4 32 8 128256 false 2 2048" ;;
    tiny) echo "64 176 2 4 2 512 true 4 64" ;;
    # head dim 128 (the tensor-core attention's), several attention tiles and LM-head chunks, small enough for the
    # CPU reference and compute-sanitizer (scripts/gpu_consistency.sh)
    mid) echo "512 1536 2 4 2 32000 false 2 1024" ;;
    *) echo "simpo_bench.sh: unknown shape '$1' (1b, 8b-4l, mid, tiny)" >&2; exit 2 ;;
  esac
}

for shape in $shapes; do
  read -r C FF L NH NKV V tied pairs seq <<< "$(shape_args "$shape")"
  dir=$work/$shape; rm -rf "$dir"; mkdir -p "$dir"
  n=$(( (steps + warm) * pairs )); prompt=$(( seq / 4 )); resp=$(( seq - prompt ))
  # random ids in [3, V): pairs of prompt + response = seq tokens on each side, nothing truncated; for DPO the
  # reference model's summed log-probs of each response, precomputed (as simpo_dist's DPO reads them: the peer runs
  # a frozen reference model instead), near a random model's r x -log(V). The draws come from the Park-Miller
  # generator written out here (every product below 2^47: exact in awk's doubles), not awk's rand(): awks differ in
  # their generators, and on the GPU machine srand(1) did not fix the sequence (its CPU reference's fp32 and bf16
  # runs of one step differed as much as any two GPU runs, which the same pairs cannot do: docs/performance.md).
  # The pairs' checksum goes into the JSON line (data_cksum) so that comparisons can check it.
  awk -v n="$n" -v p="$prompt" -v r="$resp" -v V="$V" -v dpo=$([ "$loss" = dpo ] && echo 1 || echo 0) '
    function u() { x = (x * 48271) % 2147483647; return x / 2147483647 }
    BEGIN { x = 20241124;
    for (i = 0; i < n; i++) { printf "{\"prompt_ids\": ["; for (j = 0; j < p; j++) printf "%s%d", (j ? ", " : ""), 3 + int(u() * (V - 3));
      for (s = 0; s < 2; s++) { printf "], \"%s_ids\": [", (s ? "rejected" : "chosen");
        for (j = 0; j < r; j++) printf "%s%d", (j ? ", " : ""), 3 + int(u() * (V - 3)) }
      printf "]";
      if (dpo) printf ", \"ref_chosen_logp\": %.4f, \"ref_rejected_logp\": %.4f", -r * log(V) * (1 + 0.01 * u()), -r * log(V) * (1 + 0.01 * u());
      printf "}\n" } }' > "$dir/pairs.jsonl"
  data_cksum=$(cksum < "$dir/pairs.jsonl" | cut -d' ' -f1)
  cat > "$dir/run.yaml" <<EOF
model:
  seed: 0
  dtype: $dtype
  bf16_storage: $storage
  config: {vocab_size: $V, hidden_size: $C, intermediate_size: $FF, num_hidden_layers: $L,
           num_attention_heads: $NH, num_key_value_heads: $NKV, max_position_embeddings: $seq,
           rms_norm_eps: 1.0e-5, rope_theta: 500000.0, initializer_range: 0.02, tie_word_embeddings: $tied,
           bos_token_id: 1, eos_token_id: 2}
device: $device
data: {train: pairs.jsonl, max_length: $seq, max_prompt_length: $prompt, shuffle: false, prefix_sharing: $share}
loss: $([ "$loss" = dpo ] && echo "{type: dpo, beta: 0.01}" || echo "{type: simpo, beta: 2.5, gamma_beta_ratio: 0.55}")
optim: {lr: 1.0e-6, weight_decay: 0.01, max_grad_norm: 0.0, schedule: constant}
train: {global_batch_pairs: $pairs, micro_batch_pairs: $pairs, max_steps: $(( steps + warm )), bf16_weight_cache: $wcache, lmhead_cache: $hcache, recompute_activation: $actrc, recompute_norm: $normrc, recompute: $recompute$( [ "$recompute" = true ] && echo ", recompute_layers: $rlayers")}
checkpoint: {dir: out, final: false}
log: {every_steps: 1}
EOF
  if ! (cd "$dir" && "$bin" run.yaml) > "$dir/log.txt" 2>&1; then
    tail -20 "$dir/log.txt" >&2
    echo "{\"impl\": \"simpo_dist\", \"shape\": \"$shape\", \"error\": \"run failed, log $dir/log.txt\"}"
    continue
  fi
  params=$(sed -n 's/.*layers, \([0-9]*\) parameters.*/\1/p' "$dir/log.txt" | head -1)
  peakg=$(sed -n 's/.*peak device memory \([0-9.]*\) GiB.*/\1/p' "$dir/log.txt" | head -1)
  # the trainer's memory plan of rank 0 (bytes; the peak less this is the op scratch and what the plan leaves out)
  planb=$(sed -n 's/.*memory plan rank 0 .*; planned \([0-9]*\) bytes.*/\1/p' "$dir/log.txt" | head -1)
  # train.recompute: auto: the count the trainer chose (one stage here)
  [ "$recompute" = auto ] && rlayers=$(sed -n 's/.*train.recompute auto: stage 0 recomputes \([0-9]*\) of.*/\1/p' "$dir/log.txt" | head -1)
  # and whether it recomputes the MLP's activation too (as train.recompute_activation: true)
  [ "$recompute" = auto ] && grep -q "train.recompute auto: stage 0 .*and the MLP's activation function" "$dir/log.txt" && actrc=true
  [ "$recompute" = auto ] && grep -q "train.recompute auto: stage 0 .*and the normed inputs" "$dir/log.txt" && normrc=true
  # train.lmhead_cache: auto (the default): whether the trainer kept the logits (it does where they fit)
  # (partial: the first whole chunks of rows only, hcrows "kept/all")
  # train.bf16_weight_cache: auto (the default): whether the trainer kept the bf16 weight copy (it drops it first
  # where the budget is short)
  wc=$wcache
  [ "$wc" = auto ] && { grep -q "train.bf16_weight_cache auto: stage 0 off" "$dir/log.txt" && wc=false || wc=true; }
  hc=$hcache hcrows=""
  [ "$hc" = auto ] && { grep -q "train.lmhead_cache auto: on" "$dir/log.txt" && hc=true || hc=false; }
  [ "$hcache" = auto ] && hcrows=$(sed -n 's/.*train.lmhead_cache auto: partial, the logits of the first \([0-9]*\) of \([0-9]*\) rows.*/\1\/\2/p' "$dir/log.txt" | head -1)
  [ -n "$hcrows" ] && hc=true
  # AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1): whether the trainer took it (it says so, or why not)
  ov=false
  grep -q "AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1): on" "$dir/log.txt" && ov=true
  # attention in the layers' rows: what the trainer's CUDA path takes under these settings (docs/gpu.md)
  rows=false
  [ "$share" = true ] && [ "$dtype" = bf16 ] && [ "$device" = cuda ] \
    && [ "${SIMPO_CUDA_ATTN_ROWS:-1}" != 0 ] && [ "${SIMPO_CUDA_ATTN_TC:-4}" = 4 ] && rows=true
  python3 - "$dir/out/metrics.jsonl" "$warm" "$shape" "$params" "$pairs" "$seq" "$C" "$FF" "$L" "$NH" "$NKV" "$V" \
      "${peakg:-null}" "$peak" "$dtype" "$recompute" "$wc" "$hc" "$rlayers" "$storage" "${planb:-null}" \
      "$actrc" "$share" "$normrc" "$hcrows" "$loss" "$data_cksum" "$rows" "$ov" <<'EOF'
import json, sys
path, warm, shape, params, pairs, seq, C, FF, L, NH, NKV, V = sys.argv[1:13]
peakg, peak, dtype, recompute, wcache, hcache, rlayers, storage, planb, actrc, share, normrc, hcrows, loss_type, data_cksum, rows, ov = sys.argv[13:30]
warm, pairs, seq, C, FF, L, NH, NKV, V = map(int, (warm, pairs, seq, C, FF, L, NH, NKV, V))
rows = [json.loads(l) for l in open(path)]
timed = [r for r in rows if r["step"] > warm]
step_s = sum(r["tokens"] / r["tokens_per_s"] for r in timed) / len(timed)
toks = timed[0]["tokens"]
HD = C // NH
n_seq, resp = 2 * pairs, seq - seq // 4
layer_toks = toks - (pairs * (seq // 4) if share == "true" else 0)  # each prompt once under prefix sharing
lin = 2 * (C * (NH + 2 * NKV) * HD + NH * HD * C + 3 * C * FF) * L * layer_toks
P = seq // 4
# attention in the layers' rows (prefix sharing on CUDA's version 4 in the bf16 mode) skips the rejected
# sequence's copies of the prompt queries
skipped = pairs * (P * (P + 1) // 2) if rows == "true" else 0
attn = 2 * 2 * (n_seq * (seq * (seq + 1) // 2) - skipped) * NH * HD * L
head = 2 * C * V * n_seq * resp
flops = 3 * (lin + attn + head)
tfl = flops / step_s / 1e12
print(json.dumps(dict(impl="simpo_dist", loss_type=loss_type, dtype=dtype, recompute=recompute if recompute == "auto" else recompute == "true",
                      recompute_layers=int(rlayers or 0) if recompute == "auto" or (recompute == "true" and int(rlayers) > 0)
                      else None,
                      weight_cache=dtype == "bf16" and wcache == "true", lmhead_cache=hcache == "true",
                      lmhead_cache_rows=hcrows or None,
                      recompute_activation=actrc == "true", recompute_norm=normrc == "true",
                      prefix_sharing=share == "true", adamw_overlap=ov == "true",
                      bf16_storage=storage if dtype == "bf16" else None, shape=shape,
                      params=int(params), pairs=pairs, seqlen=seq, step_s=round(step_s, 4), tok_s=round(toks / step_s),
                      tflops=round(tfl, 1), mfu=round(tfl / float(peak), 4),
                      peak_gib=None if peakg == "null" else float(peakg),
                      planned_gib=None if planb == "null" else round(int(planb) / 2**30, 3),
                      data_cksum=int(data_cksum), loss=[round(r["loss"], 6) for r in rows])), flush=True)
EOF
done | tee "$work/simpo.jsonl"

[ "$peer" = 1 ] || exit 0
py=${PEER_PY:-}
[ -n "$py" ] || { [ -x /opt/torch/.venv/bin/python3 ] && py=/opt/torch/.venv/bin/python3 || py=python3; }
if ! "$py" -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "simpo_bench.sh: $py has no torch + transformers with CUDA: peer skipped" >&2; exit 0
fi
PYTHONPATH=$root/bench/peer "$py" - "$shapes" "$peer_eager" "$loss" <<'EOF' | tee "$work/peer.jsonl"
import json, sys
import torch_simpo as T
shapes, eager, loss = sys.argv[1].split(), sys.argv[2] == "1", sys.argv[3]
print(json.dumps(dict(peak_gemm_tflops=round(T.peak_gemm(), 1), gpu=T.torch.cuda.get_device_name())), flush=True)
for s in shapes:
    if s not in T.SHAPES: continue
    for comp in ([False] if eager else []) + [True]:
        try:  # torch_simpo.py --dpo's run: DPO with a frozen bf16 reference model in the same step
            T.run(s, {"1b": 4, "8b-4l": 2}[s], 2048, comp, loss_type=loss)
        except Exception as e:
            print(json.dumps(dict(impl="torch-compile" if comp else "torch-eager", loss=loss, shape=s,
                                  error=repr(e)[:300])), flush=True)
EOF
python3 - "$work/simpo.jsonl" "$work/peer.jsonl" <<'EOF'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
for o in ours:
    for p in peer:
        if (p.get("shape") == o["shape"] and p.get("impl") == "torch-compile" and "tok_s" in p and "tok_s" in o
                and p.get("loss", "simpo") == o.get("loss_type", "simpo")):
            print(json.dumps(dict(shape=o["shape"], vs="torch-compile", loss_type=o.get("loss_type", "simpo"),
                                  tok_s_ratio=round(o["tok_s"] / p["tok_s"], 3),
                                  peak_mem_ratio=None if o.get("peak_gib") is None else
                                  round(o["peak_gib"] / p["peak_gib"], 3))))
EOF
