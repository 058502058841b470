# ZeRO-3 (parallel.zero 3: the compute weights sharded over the data-parallel ranks too, each layer's all-gathered
# before its forward and again before its backward; model.h zero3) under mpirun on the tiny-a fixture: the matmuls
# read the very values ZeRO-2's whole weights hold, so the parameters and moments after step 2 equal ZeRO-2's bit for
# bit, in fp32 (where the weights themselves are sharded; the fixture's HF float64 parameters too) and in bf16 (the
# bf16 copy sharded): dp2, dp3, dp2 x tp2, dp2 x pp2 (recompute too: the rerun reads the backward's gather), tied
# embeddings across stages (the last stage's mirror gathered as the head); its checkpoints resume bit for bit and
# move to and from one rank; bf16 without the weight copy is refused. (Under ASan, dist/eval runs ZeRO-3 in both
# precisions.)
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
source "$(dirname "$0")/zero.bash"
run_case dp2_zero2 2 1 "{zero: 2}"
run_case dp2_tp2_zero2 4 1 "{tp: 2, zero: 2}"
# fp32: the weights are the compute weights, sharded, each layer's gathered before its forward and backward
run_case dp2_zero3 2 1 "{zero: 3}"
grep -q "fp32 master weights: sharded over the data-parallel ranks (ZeRO-3: they are the compute weights" train.log \
  && ok "fp32 zero3 says the weights are sharded" || bad "fp32 zero3 log: $(grep 'master weights' train.log)"
run_case dp2_tp2_zero3 4 1 "{tp: 2, zero: 3}"
run_case dp2_pp2_zero2 4 1 "{pp: 2, zero: 2}"
run_case_rc dp2_pp2_zero3_rc 4 1 "{pp: 2, zero: 3}" dp2_pp2_zero2 # the rerun reads the backward's gather
for lay in "dp2_zero3 dp2_zero2" "dp2_tp2_zero3 dp2_tp2_zero2"; do
  set -- $lay
  for g in param exp_avg exp_avg_sq; do
    h5diff -q "$TMP/$1/out/step-00000002/index.h5" "$TMP/$2/out/step-00000002/index.h5" /$g /$g \
      && ok "fp32 $1 = $2 bit for bit (/$g)" || bad "fp32 $1 differs from $2 in /$g"
  done
done
bf16_case b_z2 2 "{zero: 2}"
# bf16: the bf16 weight copy sharded, each layer's bf16 weights gathered
bf16_case b_z3 2 "{zero: 3}"
grep -q "and the bf16 weight copy too (ZeRO-3" train.log && ok "zero3 says the bf16 copy is sharded" \
  || bad "zero3 log: $(grep 'master weights' train.log)"
same_as "$TMP/b_z3/out" "$TMP/b_z2/out" "bf16 zero3 = zero2"
bf16_case b_dp3_z2 3 "{zero: 2}" # three shards: boundaries inside other tensors, a padded last shard
bf16_case b_dp3_z3 3 "{zero: 3}"
same_as "$TMP/b_dp3_z3/out" "$TMP/b_dp3_z2/out" "bf16 dp3 zero3 = zero2"
bf16_case b_tp_z2 4 "{tp: 2, zero: 2}"
bf16_case b_tp_z3 4 "{tp: 2, zero: 3}"
same_as "$TMP/b_tp_z3/out" "$TMP/b_tp_z2/out" "bf16 dp2 tp2 zero3 = zero2"
bf16_case b_pp_z2 4 "{pp: 2, zero: 2}"
bf16_case b_pp_z3 4 "{pp: 2, zero: 3}"
same_as "$TMP/b_pp_z3/out" "$TMP/b_pp_z2/out" "bf16 dp2 pp2 zero3 = zero2"
bf16_case b_pp_z3_rc 4 "{pp: 2, zero: 3}" "" "recompute: true"
grep -q "recompute: true" run.yaml || bad "b_pp_z3_rc: run.yaml has no train.recompute"
same_as "$TMP/b_pp_z3_rc/out" "$TMP/b_pp_z2/out" "bf16 dp2 pp2 zero3 with recompute = zero2 without"
tied_case bf16 2 3
same_as "$TMP/b_tied_z3/out" "$TMP/b_tied_z2/out" "tied bf16 pp2 dp2 zero3 = zero2"
tied_case fp32 2 3 # the last stage's mirror of the tied head gathered in fp32
same_as "$TMP/f_tied_z3/out" "$TMP/f_tied_z2/out" "tied fp32 pp2 dp2 zero3 = zero2"
# its checkpoints: resumed bit for bit, and moved to one rank and from one rank
ckpt_moves 3
# parallel.zero3_prefetch (default true): each next layer's gather into a second buffer while the layer before
# computes. tiny-a's two layers: per micro-batch the forward gathers layer 1 ahead, the backward layer 1 (beside the
# LM head's backward) and layer 0: 3 x 3 micro-batches x 2 steps on rank 0. Without it, none; the memory plan (one
# buffer fewer) and the traffic as planned either way, and the same numbers bit for bit, in fp32 and bf16, with
# recompute (the rerun reads the layer gathered ahead) and over dp2 x pp2
pf_case() { # NAME NP PARALLEL DTYPE [TRAIN_KEYS] EXPECT_AHEAD
  local name=$1 np=$2 par=$3 dt=$4 keys=$5 want=$6
  for v in on off; do
    setup ${name}_$v; sed -i "s/^model: {init: model}/model: {init: model, dtype: $dt}/" run.yaml
    [ -n "$keys" ] && sed -i "s/^train: {/train: {$keys, /" run.yaml
    [ $v = on ] && echo "parallel: $par" >> run.yaml || echo "parallel: ${par%\}}, zero3_prefetch: false}" >> run.yaml
    SIMPO_TRACE=dp $MPI $np "$BIN" run.yaml 2> train.log && ok "$name prefetch $v trains" || bad "$name $v: $(tail -3 train.log)"
    check_log "$name prefetch $v" train.log
    local n; n=$(grep -c "gathered ahead" train.log)
    if [ $v = on ]; then [ "$n" -eq "$want" ] && ok "$name: $n layers gathered ahead" || bad "$name: $n gathered ahead, wanted $want"
    else [ "$n" -eq 0 ] && ok "$name: none gathered ahead without it" || bad "$name: $n gathered ahead without prefetch"; fi
  done
  same_state "$TMP/${name}_on" "$TMP/${name}_off" "$name: prefetch = none"
}
pf_case pf_f32 2 "{zero: 3}" fp32 "" 18
pf_case pf_b16 2 "{zero: 3}" bf16 "" 18
pf_case pf_b16_rc 2 "{zero: 3}" bf16 "recompute: true" 18
pf_case pf_pp 4 "{pp: 2, zero: 3}" bf16 "" 0 # a layer per stage: nothing to gather ahead, no second buffer
# in bf16 without the weight copy ZeRO-3 would send the fp32 weights where the copy's gathers send bf16: an error
setup z3_nocopy; sed -i 's/^model: {init: model}/model: {init: model, dtype: bf16}/; s/^train: {/train: {bf16_weight_cache: false, /' run.yaml
echo "parallel: {zero: 3}" >> run.yaml
expect_error "bf16 zero3 without the weight copy" "parallel.zero 3 in bf16 shards the bf16 weight copy: set train.bf16_weight_cache true or auto" \
  $MPI 2 "$BIN" run.yaml
finish
