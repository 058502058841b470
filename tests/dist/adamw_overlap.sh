# AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1, optim.h optim_overlap_begin): each gradient bucket's update
# runs as soon as the step's last backward completes it. On the CPU the late ops run where they are called, the
# earliest a GPU could run them, so an update begun before its bucket's gradient is final, or before the backward
# is done reading its parameters (the bf16 weight copy included), or in a backward other than the last one, or of
# an embedding row the step reads, moves the numbers. Against the same run without it (the fused norm, optim_step_norm): every logged number and the
# parameters and AdamW moments after step 2 bitwise alike, under gradient accumulation, one micro-batch, the strict
# backend, the bf16 mode with the weight copy, pipeline stages, tensor (and sequence) parallelism and tied embeddings with a dense
# gradient; the trace shows the updates made inside the backward, one per bucket and step; and where it cannot
# apply the trainer says why and runs without it.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
# overlap_case NAME NP MICRO PARALLEL BUCKETS FREE SED [ENV...]: the fixture (max_grad_norm 0, edited by SED) with
# and without the overlap; BUCKETS: the updates inside the backward per step that the ranks' traces must show
# together (a layer's two: its MLP part once the backward reaches its attention, then the rest), FREE: the sparse
# embedding gradients whose free rows went before the forward
overlap_case() {
  local name=$1 np=$2 micro=$3 par=$4 want=$5 free=$6 ed=$7; shift 7
  for ov in 0 1; do
    setup "$name-$ov" "$micro"
    sed -i -e 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' -e "$ed" run.yaml
    [ -n "$par" ] && echo "parallel: $par" >> run.yaml
    env "$@" SIMPO_ADAMW_OVERLAP=$ov SIMPO_TRACE=adamw $MPI "$np" "$BIN" run.yaml 2> train.log \
      || bad "$name (overlap $ov) failed: $(tail -3 train.log)"
  done
  local a=$TMP/$name-1 b=$TMP/$name-0
  grep -q "AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1): on" "$a/train.log" && ok "$name: on" \
    || bad "$name: not on: $(grep 'inside the backward' "$a/train.log")"
  ! grep -q "inside the backward\|\[adamw\]" "$b/train.log" && ok "$name: off unless asked" || bad "$name: overlap without asking"
  local got
  got=$(grep -c "^\[adamw\] step 2: .* updated in the backward" "$a/train.log")
  [ "$got" = "$want" ] && ok "$name: $want bucket updates inside step 2's backward" || bad "$name: $got updates in the backward, want $want"
  got=$(grep -c "^\[adamw\] step 2: the free rows of 'model.embed_tokens.weight' (.* held) updated before the forward" "$a/train.log")
  [ "$got" = "$free" ] && ok "$name: $free embedding's free rows before step 2's forward" || bad "$name: free rows $got times, want $free"
  same_state "$a" "$b" "$name"
}
# tiny-a: 2 layers, untied, the sparse embedding gradient (its free rows before the forward, its held rows after the
# backward): the head and each layer's two parts inside the backward
overlap_case accum 1 1 "" 5 1 ""
overlap_case onemb 1 6 "" 5 1 ""
overlap_case strict 1 2 "" 5 1 "" SIMPO_BACKEND=cpu_strict
overlap_case bf16 1 2 "" 5 1 "s/^model: {/model: {dtype: bf16, /"
overlap_case dense 1 2 "" 6 0 "s/seed: 0}/seed: 0, sparse_embedding_grad: false}/"
overlap_case recompute 1 2 "" 5 1 "s/seed: 0}/seed: 0, recompute: true}/"
# pipeline: each stage its own layer, the last one the head too (the first stage's embedding gradient is sparse)
overlap_case pp2 2 1 "{pp: 2}" 5 1 ""
# tensor parallelism: each rank its slices of the same 5 parts and of the embedding
overlap_case tp2 2 2 "{tp: 2}" 10 2 ""
# sequence parallelism: each rank's rows give part of a gain's gradient; the MLP part's update (from ln2 on) waits for
# ln2's to be summed over TP
overlap_case tp2_sp 2 2 "{tp: 2, sequence_parallel: true}" 10 2 ""
grep -q "dtype: bf16" "$TMP/bf16-1/run.yaml" && ok "the bf16 case runs the bf16 mode" || bad "bf16 case: no dtype bf16"
# tied embeddings (4 layers): the embedding's gradient is the LM head's too, so it waits for the step's end; the
# final norm and the layers (two parts each) go inside the backward
for ov in 0 1; do
  setup_tied tied-$ov
  sed -e 's/weight_decay: 0.01}/weight_decay: 0.01, max_grad_norm: 0.0}/' -e 's/dir: out}/dir: out, every_steps: 2}/' \
    -e 's/max_steps: 3/max_steps: 2/' base.yaml > run.yaml
  SIMPO_ADAMW_OVERLAP=$ov SIMPO_TRACE=adamw "$BIN" run.yaml 2> train.log || bad "tied (overlap $ov) failed: $(tail -3 train.log)"
done
[ "$(grep -c "^\[adamw\] step 2: .* updated in the backward" "$TMP/tied-1/train.log")" = 9 ] \
  && ! grep -q "free rows" "$TMP/tied-1/train.log" && ok "tied: 9 updates inside the backward, no free rows" \
  || bad "tied: $(grep -c "^\[adamw\] step 2: " "$TMP/tied-1/train.log") updates in the backward, want 9"
same_state "$TMP/tied-1" "$TMP/tied-0" tied
# tied embeddings over two pipeline stages: the last stage's mirror of the embedding waits for the pipeline's sum of
# the two copies' gradients (after the step's backwards), each stage's layers and the final norm go inside them
for ov in 0 1; do
  setup_tied tiedpp-$ov
  sed -e 's/weight_decay: 0.01}/weight_decay: 0.01, max_grad_norm: 0.0}/' -e 's/dir: out}/dir: out, every_steps: 2}/' \
    -e 's/max_steps: 3/max_steps: 2/' base.yaml > run.yaml
  echo "parallel: {pp: 2}" >> run.yaml
  SIMPO_ADAMW_OVERLAP=$ov SIMPO_TRACE=adamw $MPI 2 "$BIN" run.yaml 2> train.log \
    || bad "tied, pp 2 (overlap $ov) failed: $(tail -3 train.log)"
done
[ "$(grep -c "^\[adamw\] step 2: .* updated in the backward" "$TMP/tiedpp-1/train.log")" = 9 ] \
  && ok "tied, pp 2: 9 updates inside the backwards" \
  || bad "tied, pp 2: $(grep -c "^\[adamw\] step 2: " "$TMP/tiedpp-1/train.log") updates in the backward, want 9"
same_state "$TMP/tiedpp-1" "$TMP/tiedpp-0" "tied, pp 2"
# where it cannot apply: said, and the run is the one without it
setup clip 2
SIMPO_ADAMW_OVERLAP=1 "$BIN" run.yaml 2> train.log
grep -q "inside the backward (SIMPO_ADAMW_OVERLAP=1): off, optim.max_grad_norm > 0" train.log && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" \
  && ok "clipping: off, said, and the fixture's reference parameters" || bad "clipping: $(grep 'inside the backward' train.log)"
setup skip 2
sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/; s/max_steps: 2, seed: 0}/max_steps: 2, seed: 0, nonfinite: skip}/' run.yaml
SIMPO_ADAMW_OVERLAP=1 "$BIN" run.yaml 2> train.log
grep -q "off, train.nonfinite: skip" train.log && ok "nonfinite skip: off, said" || bad "skip: $(grep 'inside the backward' train.log)"
setup dp 1
sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' run.yaml
SIMPO_ADAMW_OVERLAP=1 $MPI 2 "$BIN" run.yaml 2> train.log
grep -q "off, more than one data-parallel rank" train.log && ok "dp 2: off, said" || bad "dp: $(grep 'inside the backward' train.log)"
# an injected NaN: off (the NaN comes after the backward), so the run still stops naming the tensor
setup nan 2
sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' run.yaml
SIMPO_ADAMW_OVERLAP=1 SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml 2> train.log
grep -q "off, SIMPO_INJECT_NONFINITE" train.log && grep -q "step 2: non-finite gradient norm" train.log \
  && ok "injected NaN: off, and the run stops at step 2" || bad "nan: $(tail -2 train.log)"
setup badenv 2
expect_error "SIMPO_ADAMW_OVERLAP=2 refused" "SIMPO_ADAMW_OVERLAP: expected 0 or 1, found \"2\"" env SIMPO_ADAMW_OVERLAP=2 "$BIN" run.yaml
finish
