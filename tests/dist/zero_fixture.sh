# ZeRO-1/2 (AdamW moments and gradients sharded over data-parallel ranks) under mpirun on the tiny-a fixture:
# parameters after step 2 equal the HF float64 reference for several layouts, ZeRO-1 equals the replicated
# optimizer bit for bit, and checkpoints written with sharded moments resume under other layouts (ZeRO-3:
# zero3_fixture.sh).
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
source "$(dirname "$0")/zero.bash"
run_case dp2_zero0 2 1 "{zero: 0}"
run_case dp2_zero1 2 1 "{zero: 1}"
run_case dp2_zero2 2 1 "{zero: 2}"
run_case dp3_zero2 3 1 "{zero: 2}"
run_case dp2_tp2_zero2 4 1 "{tp: 2, zero: 2}"
for g in param exp_avg exp_avg_sq; do
  h5diff -q "$TMP/dp2_zero0/out/step-00000002/index.h5" "$TMP/dp2_zero1/out/step-00000002/index.h5" /$g /$g \
    && ok "zero1 = zero0 bit for bit (/$g)" || bad "zero1 differs from zero0 in /$g"
done
# sharded moments written by dp2 x tp2 x zero2 after step 1, resumed on one rank; and the reverse into dp3 zero2
setup z2_to_1; echo "parallel: {tp: 2, zero: 2}" >> run.yaml
$MPI 4 "$BIN" run.yaml --stop-at-step 1 2> a.log && "$BIN" base.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "dp2 tp2 zero2 -> 1 rank" || bad "z2 -> 1: $(tail -2 a.log b.log)"
setup one_to_z2; cp base.yaml z.yaml; echo "parallel: {zero: 2}" >> z.yaml
"$BIN" base.yaml --stop-at-step 1 2> a.log && $MPI 3 "$BIN" z.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "1 rank -> dp3 zero2" || bad "1 -> z2: $(tail -2 a.log b.log)"
# a resumed run equals the uninterrupted one under the same sharded layout, bit for bit
setup z2_resume; echo "parallel: {zero: 2}" >> run.yaml
$MPI 2 "$BIN" run.yaml --stop-at-step 1 2> a.log && $MPI 2 "$BIN" run.yaml 2> b.log || bad "z2 resume run failed"
for g in param exp_avg exp_avg_sq; do
  h5diff -q "$TMP/dp2_zero2/out/step-00000002/index.h5" out/step-00000002/index.h5 /$g /$g \
    && ok "zero2 resume = uninterrupted (/$g)" || bad "zero2 resume differs in /$g"
done
# the sparse embedding gradient under data parallelism (auto: on with ZeRO 0 / 1, the embedding inside one shard):
# every rank holds the rows of the whole group's tokens and the group sums them; bit for bit the dense gradient's
# run on two ranks (with tensor parallelism too: each rank's vocabulary slice)
grep -q "sparse_embedding_grad: on" "$TMP/dp2_zero1/train.log" && ok "dp2 zero1: the sparse embedding gradient is on" \
  || bad "dp2 zero1 sparse: $(grep sparse_embedding "$TMP/dp2_zero1/train.log")"
for lay in "dense_z1;2;{zero: 1};dp2_zero1" "dense_z0;2;{zero: 0};dp2_zero0"; do
  IFS=";" read -r name np par twin <<< "$lay"
  setup $name; sed -i 's/^train: {/train: {sparse_embedding_grad: false, /' run.yaml; echo "parallel: $par" >> run.yaml
  $MPI $np "$BIN" run.yaml 2> train.log && ! grep -q "sparse_embedding_grad: on" train.log || bad "$name: $(tail -3 train.log)"
  for g in param exp_avg exp_avg_sq; do
    h5diff -q "$TMP/$twin/out/step-00000002/index.h5" out/step-00000002/index.h5 /$g /$g \
      && ok "$twin (sparse embedding gradient) = dense (/$g)" || bad "$twin sparse differs from dense in /$g"
  done
done
expect_error "sparse true with ZeRO-2" "train.sparse_embedding_grad: true needs untied embeddings" \
  bash -c "cd '$TMP/dense_z1' && sed 's/sparse_embedding_grad: false/sparse_embedding_grad: true/; s/zero: 1/zero: 2/' run.yaml > z2.yaml && $MPI 2 '$BIN' z2.yaml"
# ZeRO-2's buckets reduced in pieces (as a bucket past MPI's int counts is): the same sums on two ranks, bit for bit
setup z2_pieces; echo "parallel: {zero: 2}" >> run.yaml
SIMPO_ZERO_PIECE=1000 $MPI 2 "$BIN" run.yaml 2> train.log || bad "z2 in pieces failed: $(tail -3 train.log)"
for g in param exp_avg exp_avg_sq; do
  h5diff -q "$TMP/dp2_zero2/out/step-00000002/index.h5" out/step-00000002/index.h5 /$g /$g \
    && ok "zero2 in 1000-element pieces = whole buckets (/$g)" || bad "zero2 pieces differ in /$g"
done
# bf16 with the bf16 weight copy: ZeRO >= 1 shards the fp32 master weights too (model.h params_sharded; the log
# says so); the parameters and moments after step 2 equal the replicated ZeRO-0 run bit for bit, for ZeRO-1 and 2 and
# with dp x tp; a checkpoint written by shards resumes bit for bit, and moves to and from one rank
bf16_case b_z0 2 "{zero: 0}"
grep -q "master weights: whole" train.log && ok "zero0 keeps the master weights whole" || bad "zero0 log: $(grep 'master weights' train.log)"
bf16_case b_z1 2 "{zero: 1}"
grep -q "master weights: sharded" train.log && ok "zero1 says the master weights are sharded" || bad "zero1 log: $(grep 'master weights' train.log)"
same_as "$TMP/b_z1/out" "$TMP/b_z0/out" "bf16 zero1 (sharded master weights) = zero0"
# ZeRO-2 sums each micro-batch over the ranks (not bitwise ZeRO-0's order): against ZeRO-2 with whole master weights
# (no bf16 weight copy: the matmuls round the fp32 weights to the same bf16 values)
bf16_case b_z2 2 "{zero: 2}"
setup b_z2_whole; sed -i 's/^model: {init: model}/model: {init: model, dtype: bf16}/; s/^train: {/train: {bf16_weight_cache: false, /' run.yaml
echo "parallel: {zero: 2}" >> run.yaml
$MPI 2 "$BIN" run.yaml 2> train.log && grep -q "master weights: whole" train.log && ok "zero2 without the bf16 copy: whole master weights" \
  || bad "b_z2_whole: $(tail -3 train.log)"
same_as "$TMP/b_z2/out" "$TMP/b_z2_whole/out" "bf16 zero2: sharded master weights = whole"
bf16_case b_tp_z0 4 "{tp: 2, zero: 0}"
bf16_case b_tp_z1 4 "{tp: 2, zero: 1}"
same_as "$TMP/b_tp_z1/out" "$TMP/b_tp_z0/out" "bf16 dp2 tp2 zero1 = zero0"
bf16_case b_pp_z0 4 "{pp: 2, zero: 0}"
bf16_case b_pp_z1 4 "{pp: 2, zero: 1}"
same_as "$TMP/b_pp_z1/out" "$TMP/b_pp_z0/out" "bf16 dp2 pp2 zero1 = zero0"
# tied embeddings across two stages: the first stage's embedding (fp32-read, whole) and the last stage's mirror
# (a matmul weight: its bf16 copy) sharded on both
tied_case bf16 0 1
grep -q "master weights: sharded" train.log && ok "tied zero1: sharded master weights" || bad "tied zero1 log: $(grep 'master weights' train.log)"
same_as "$TMP/b_tied_z1/out" "$TMP/b_tied_z0/out" "tied bf16 pp2 dp2 zero1 = zero0"
ckpt_moves 1
finish
