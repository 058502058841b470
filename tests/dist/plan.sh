# The memory plan and the communication volumes of docs/design.md against what the code does: for several
# layouts every rank's backend allocation equals the planned bytes, and the bytes its collectives counted in the
# first step equal the formulas, kind by kind (single rank, dp, zero 1/2/3, tp, pp, dp x tp x pp with zero 1 and 2,
# tied embeddings across stages, sequence parallelism); the same with train.recompute (also dp x tp x pp; and of one layer of two,
# train.recompute_layers), where every rank also
# allocates fewer bytes than in the layout without it, and with model.dtype bf16 (bf16 activation storage and the
# bf16 weight copy), again fewer bytes. These are the volumes `simpo_dist plan` times
# (docs/scaling.md).
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
# every forward of the bf16 cases checks the bf16 weight copy against the weights (model.h): under ZeRO the
# optimizer leaves other ranks' shards to the all-gather, and the copy must then be refreshed, not trusted
export SIMPO_CHECK_WEIGHTS16=1
run_case() { # name np micro parallel-line [recompute] [bf16] [lmhead_cache] [recompute_activation] [recompute_norm]
  rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cp -r "$FIX/tiny-a/." "$TMP/$1/"; cd "$TMP/$1"
  full_length_pairs # activations as large as the formulas allow, next to the weights (dist.bash)
  sed -i "s/micro_batch_pairs: 2/micro_batch_pairs: $3/" run.yaml; echo "parallel: $4" >> run.yaml
  if [ -n "${5:-}" ]; then
    local rl=""; [ "$5" = rc1 ] && rl="recompute_layers: 1, " # the first layer of each stage only
    sed -i "s/^train: {/train: {recompute: true, $rl/" run.yaml
    grep -q "^train: {recompute: true" run.yaml || bad "$1: run.yaml has no train.recompute"
  fi
  if [ -n "${6:-}" ]; then
    sed -i 's/^model: {init: model}/model: {init: model, dtype: bf16}/' run.yaml
    grep -q "dtype: bf16" run.yaml || bad "$1: run.yaml has no model.dtype"
  fi
  if [ -n "${7:-}" ]; then
    sed -i 's/^train: {/train: {lmhead_cache: true, /' run.yaml
    grep -q "lmhead_cache: true" run.yaml || bad "$1: run.yaml has no train.lmhead_cache"
  fi
  if [ -n "${8:-}" ]; then
    sed -i 's/^train: {/train: {recompute_activation: true, /' run.yaml
    grep -q "recompute_activation: true" run.yaml || bad "$1: run.yaml has no train.recompute_activation"
  fi
  if [ -n "${9:-}" ]; then
    sed -i 's/^train: {/train: {recompute_norm: true, /' run.yaml
    grep -q "recompute_norm: true" run.yaml || bad "$1: run.yaml has no train.recompute_norm"
  fi
  $MPI $2 "$BIN" run.yaml --quiet 2> train.log || bad "$1 failed: $(tail -3 train.log)"
  check_log "$1" train.log
}
run_case one 1 2 "{tp: 1}"
run_case dp2 2 1 "{zero: 0}"
run_case dp2_zero1 2 1 "{zero: 1}"
run_case dp3_zero2 3 2 "{zero: 2}"
run_case tp2 2 2 "{tp: 2}"
run_case pp2 2 1 "{pp: 2}"
run_case dp2_tp2_pp2_zero2 8 1 "{tp: 2, pp: 2, zero: 2}"
run_case dp2_tp2_pp2_zero1 8 1 "{tp: 2, pp: 2, zero: 1}"
# recompute: "rank allocated" per rank of a case's log; case $2 (recompute) allocates no more than case $1 on any
# rank and less in all (a rank with one layer and one slot saves nothing: its one layer becomes the working area)
alloc_by_rank() { grep "memory plan rank" "$TMP/$1/train.log" | sed 's/.*memory plan rank \([0-9]*\) .*allocated \([0-9]*\) bytes/\1 \2/' | sort -n; }
fewer_bytes() {
  paste <(alloc_by_rank "$1") <(alloc_by_rank "$2") \
    | awk '$1 != $3 || $4 > $2 {bad = 1} {n++; a += $2; b += $4} END {exit bad || n == 0 || b >= a}' \
    && ok "$2 allocates less than $1: $(alloc_by_rank "$2" | tr '\n' ' ')vs $(alloc_by_rank "$1" | tr '\n' ' ')" \
    || bad "$2 vs $1: $(alloc_by_rank "$2" | tr '\n' ' ')vs $(alloc_by_rank "$1" | tr '\n' ' ')"
}
run_case one_rc 1 2 "{tp: 1}" rc; fewer_bytes one one_rc
run_case dp2_zero1_rc 2 1 "{zero: 1}" rc; fewer_bytes dp2_zero1 dp2_zero1_rc
run_case tp2_rc 2 2 "{tp: 2}" rc; fewer_bytes tp2 tp2_rc
run_case pp2_rc 2 1 "{pp: 2}" rc; fewer_bytes pp2 pp2_rc
# all three dimensions at once with recompute (TP's extra o-projection all-reduce next to PP sends and ZeRO-2)
run_case dp2_tp2_pp2_zero2_rc 8 1 "{tp: 2, pp: 2, zero: 2}" rc; fewer_bytes dp2_tp2_pp2_zero2 dp2_tp2_pp2_zero2_rc
# train.recompute_layers: 1 of tiny-a's 2 layers: the plan's partial recompute (the second layer's intermediates
# kept, the working area once) and TP's extra o-projection all-reduce for the first layer only
run_case tp2_rc1 2 2 "{tp: 2}" rc1
grep -q "recompute_layers: 1" "$TMP/tp2_rc1/run.yaml" && ok "tp2_rc1 runs with train.recompute_layers: 1" || bad "tp2_rc1: no recompute_layers"
# model.dtype bf16: ln1, ln2 and the MLP's hidden state in bf16 storage (model.h act16), planned at 2 bytes
run_case pp2_bf16 2 1 "{pp: 2}" "" bf16; fewer_bytes pp2 pp2_bf16
run_case dp2_zero1_bf16 2 1 "{zero: 1}" "" bf16; fewer_bytes dp2_zero1 dp2_zero1_bf16
# parallel.zero 3: each rank's part of the bf16 copy at its bound, the layer and head gather buffers; the layers'
# bf16 weights all-gathered twice per micro-batch, the head's once a step (two micro-batches per rank here)
run_case dp2_zero3 2 1 "{zero: 3}" # fp32: the weights' own shards, a layer's span of them gathered
run_case dp2_tp2_pp2_zero3_rc 8 1 "{tp: 2, pp: 2, zero: 3}" rc
run_case dp2_zero3_bf16 2 1 "{zero: 3}" "" bf16
grep -q "bf16 weight copy too (ZeRO-3" "$TMP/dp2_zero3_bf16/train.log" && ok "dp2_zero3_bf16 runs ZeRO-3" \
  || bad "dp2_zero3_bf16: $(grep 'master weights' "$TMP/dp2_zero3_bf16/train.log")"
run_case dp2_tp2_pp2_zero3_rc_bf16 8 1 "{tp: 2, pp: 2, zero: 3}" rc bf16
run_case dp2_tp2_zero3_sp_bf16 4 1 "{tp: 2, zero: 3, sequence_parallel: true}" "" bf16
# train.lmhead_cache: the last stage keeps a micro-batch's logits (its response tokens x vocab, fp32), the first nothing more
run_case pp2_tp2_hc 4 1 "{pp: 2, tp: 2}" "" "" hc
run_case tp2_rc_bf16 2 2 "{tp: 2}" rc bf16; fewer_bytes tp2_rc tp2_rc_bf16
# train.recompute_activation: the MLP's hidden state once per rank (stage 0 has two slots in flight, which share it)
run_case pp2_ra_bf16 2 1 "{pp: 2}" "" bf16 "" ra; fewer_bytes pp2_bf16 pp2_ra_bf16
# train.recompute_norm: ln1 and ln2 once per rank too, with tensor parallelism (column-parallel q/k/v and gate/up
# read the one buffer)
run_case pp2_tp2_rn_bf16 4 1 "{pp: 2, tp: 2}" "" bf16 "" ra rn
# parallel.sequence_parallel: the C-wide rows (layer inputs, norms, x2, the stage's input and output) a block of
# the TP group's, the gathered normed rows once per rank; the forward's all-reduces a reduce-scatter and an all-gather,
# the backward's gathers, the norms' gain gradients summed over TP, the pipeline's messages a block
run_case tp2_sp 2 2 "{tp: 2, sequence_parallel: true}"; fewer_bytes tp2 tp2_sp
run_case dp2_tp2_pp2_zero2_rc_sp 8 1 "{tp: 2, pp: 2, zero: 2, sequence_parallel: true}" rc
fewer_bytes dp2_tp2_pp2_zero2_rc dp2_tp2_pp2_zero2_rc_sp
run_case tp2_rc1_sp 2 2 "{tp: 2, sequence_parallel: true}" rc1; fewer_bytes tp2_rc1 tp2_rc1_sp
run_case pp2_tp2_rn_bf16_sp 4 1 "{pp: 2, tp: 2, sequence_parallel: true}" "" bf16 "" ra rn
fewer_bytes pp2_tp2_rn_bf16 pp2_tp2_rn_bf16_sp
grep -q "p2p [1-9][0-9]*/" "$TMP/pp2_tp2_rn_bf16_sp/train.log" && ok "sequence parallel pipeline sends counted" \
  || bad "pp2_tp2_rn_bf16_sp: no pipeline bytes"
cd "$TMP" && mkdir tied && cd tied && cp "$FIX/tiny-a/pairs.jsonl" .
cat > run.yaml <<'YAML'
model:
  config: {vocab_size: 384, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 3, num_attention_heads: 4,
           num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true}
data: {train: pairs.jsonl, max_length: 64, max_prompt_length: 32}
train: {global_batch_pairs: 6, micro_batch_pairs: 1, max_steps: 1}
parallel: {pp: 3, tp: 2}
YAML
$MPI 6 "$BIN" run.yaml --quiet 2> train.log || bad "tied pp3 tp2 failed: $(tail -3 train.log)"
check_log "tied pp3 x tp2" train.log
# ZeRO-2 with tied embeddings: each stage holds the tied tensor's gradient whole for the step (the first stage's
# embedding, the last stage's mirror) besides its shard and bucket, and reduce-scatters it once a step
sed 's/^parallel: .*/parallel: {pp: 3, zero: 2}/; s/global_batch_pairs: 6/global_batch_pairs: 4/' run.yaml > z2.yaml
echo "checkpoint: {dir: outz2}" >> z2.yaml
$MPI 6 "$BIN" z2.yaml --quiet 2> z2.log || bad "tied pp3 dp2 zero2 failed: $(tail -3 z2.log)"
check_log "tied pp3 x dp2 zero2" z2.log
# ZeRO-3 with tied embeddings: the last stage gathers its mirror of the tied head as the LM head (fp32 and bf16)
sed 's/^parallel: .*/parallel: {pp: 3, zero: 3}/; s/outz2/outz3f/' z2.yaml > z3f.yaml
$MPI 6 "$BIN" z3f.yaml --quiet 2> z3f.log || bad "tied pp3 dp2 zero3 failed: $(tail -3 z3f.log)"
check_log "tied pp3 x dp2 zero3" z3f.log
sed 's/^parallel: .*/parallel: {pp: 3, zero: 3}/; s|^model:|model:\n  dtype: bf16|; s/outz2/outz3/' z2.yaml > z3.yaml
$MPI 6 "$BIN" z3.yaml --quiet 2> z3.log || bad "tied pp3 dp2 zero3 bf16 failed: $(tail -3 z3.log)"
grep -q "dtype: bf16" z3.yaml && check_log "tied pp3 x dp2 zero3, bf16" z3.log
# and in bf16: the last stage's bf16 weight copy (train.bf16_weight_cache) holds the tied head's mirror
sed -i 's|^model:|model:\n  dtype: bf16|' run.yaml; echo "checkpoint: {dir: out16}" >> run.yaml
$MPI 6 "$BIN" run.yaml --quiet 2> train16.log || bad "tied pp3 tp2 bf16 failed: $(tail -3 train16.log)"
check_log "tied pp3 x tp2, bf16" train16.log
grep -q '"comm/allreduce_bytes"' out/metrics.jsonl && ok "metrics carry the step's communication bytes" || bad "no comm bytes in metrics"
finish
