# The trainer on the CUDA backend (label gpu; exit 77, skipped, without a CUDA build or device): the tiny-a fixture
# trained 2 steps with device: cuda equals the HF float64 parameters after step 2 (check_params, the fixture
# README's rule) on 1 rank, and on 2 and 4 ranks sharing the one GPU through the MPI collectives (device buffers
# staged through host memory; tp2 x pp2 with sequence parallelism too); a 2-rank run equals the 1-rank run; bf16 ZeRO-3
# on 2 ranks equals ZeRO-2 bit for bit; parallel.backend: nccl on 1 rank; the log names
# the CUDA backend and its peak device memory; and AdamW inside the backward gives the same state bit for bit.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
if ! nvidia-smi -L >/dev/null 2>&1 || ! "$BIN" --version 2>&1 | grep -q "cuda"; then
  echo "SKIPPED: no CUDA device (or no CUDA build)"; rm -rf "$TMP"; exit 77
fi
run_gpu() { # NAME NP MICRO PARALLEL
  setup "$1" "$3"; echo "device: cuda" >> run.yaml; [ -n "$4" ] && echo "parallel: $4" >> run.yaml
  if $MPI $2 "$BIN" run.yaml 2> train.log; then ok "$1 trains on cuda"; else bad "$1 failed: $(tail -3 train.log)"; fi
  grep -q "peak device memory" train.log && ok "$1 reports peak device memory" || bad "$1: no peak memory line"
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$1 params = step2" || bad "$1 params"
}
run_gpu g1 1 2 ""
grep -q "backend cuda" train.log && ok "g1 ran on the cuda backend" || bad "g1 backend: $(grep backend train.log | head -2)"
"$BIN" export --checkpoint out --out "$TMP/g1_export" 2>/dev/null || bad "g1 export"
run_gpu g_dp2 2 1 "{zero: 1}"
"$TOOLS/check_params" out "$TMP/g1_export/model.safetensors" && ok "dp2 zero1 = 1 rank" || bad "dp2 zero1 differs from 1 rank"
# ZeRO-2: each rank holds its gradient shard; every micro-batch's buckets are reduce-scattered from device memory
# (staged through host) and added into the shard on the device
run_gpu g_dp2_z2 2 1 "{zero: 2}"
"$TOOLS/check_params" out "$TMP/g1_export/model.safetensors" && ok "dp2 zero2 = 1 rank" || bad "dp2 zero2 differs from 1 rank"
run_gpu g_tp2 2 1 "{tp: 2}"
run_gpu g_pp2 2 2 "{pp: 2}"
run_gpu g_tp2_pp2 4 2 "{tp: 2, pp: 2}"
run_gpu g_tp2_pp2_sp 4 1 "{tp: 2, pp: 2, sequence_parallel: true}" # the rows' blocks gathered on the device
run_gpu g_nccl 1 2 "{backend: nccl}"
grep -q "collectives nccl" train.log && ok "nccl selected" || bad "nccl not selected: $(grep -i collectives train.log | head -2)"
# model.dtype: bf16 on the GPU: both steps' loss and grad norm within the bf16 bounds of tests/model/fixture_bf16.h
# (4u / 16u, u = 2^-9) of the float64 reference, and the same on 2 ranks (dp2 zero1) as on 1
setup g_bf16 2; sed -i 's|^model: {init: model}|model: {init: model, dtype: bf16}|' run.yaml; echo "device: cuda" >> run.yaml
if "$BIN" run.yaml 2> train.log; then ok "bf16 trains on cuda"; else bad "bf16 failed: $(tail -3 train.log)"; fi
grep -q "backend cuda bf16" train.log && ok "bf16 named in the log" || bad "bf16 log: $(grep backend train.log | head -1)"
for k in 1 2; do
  for key in loss grad_norm; do
    got=$(metric out/metrics.jsonl $k $key); want=$(python3 -c "import json; print(json.load(open('$FIX/tiny-a/expected.json'))['steps'][$k-1]['$key'])")
    awk -v g="$got" -v w="$want" -v t="$([ $key = loss ] && echo 4 || echo 16)" 'BEGIN {d = g - w; if (d < 0) d = -d; exit !(d <= t / 512 * (w < 0 ? -w : w))}' \
      && ok "bf16 step $k $key $got vs $want" || bad "bf16 step $k $key $got vs fixture $want"
  done
done
cp out/metrics.jsonl one.jsonl; rm -rf out; echo "parallel: {zero: 1}" >> run.yaml; sed -i 's/micro_batch_pairs: 2/micro_batch_pairs: 1/' run.yaml
$MPI 2 "$BIN" run.yaml 2> train2.log || bad "bf16 dp2: $(tail -3 train2.log)"
l1=$(metric one.jsonl 2 loss); l2=$(metric out/metrics.jsonl 2 loss)
awk -v a="$l1" -v b="$l2" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 4 / 512 * a)}' && ok "bf16 dp2 step-2 loss $l2 = 1 rank $l1 within 4u" \
  || bad "bf16 dp2 loss $l2 vs 1 rank $l1"
# ZeRO-3 on the GPU (the bf16 copy in shards, each layer's all-gathered from device memory before its forward and
# backward, staged through host): bitwise ZeRO-2 on two ranks, which read the same bf16 weights whole
for z in 2 3; do
  setup "g_bf16_z$z" 1; sed -i 's|^model: {init: model}|model: {init: model, dtype: bf16}|' run.yaml
  printf 'device: cuda\nparallel: {zero: %s}\n' "$z" >> run.yaml
  SIMPO_CHECK_WEIGHTS16=1 $MPI 2 "$BIN" run.yaml 2> train.log && ok "bf16 dp2 zero$z trains on cuda" || bad "bf16 dp2 zero$z: $(tail -3 train.log)"
done
same_state "$TMP/g_bf16_z3" "$TMP/g_bf16_z2" "cuda bf16 dp2 zero3 vs zero2"
# AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1: each bucket's update on the late stream, the embedding's free
# rows beside the forwards), 6 micro-batches a step, nothing clipped: bitwise the run without it, fp32 and bf16
for dt in fp32 bf16; do
  for ov in 0 1; do
    setup "g_ov_${dt}_$ov" 1
    sed -i -e 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' -e "s|^model: {init: model}|model: {init: model, dtype: $dt}|" run.yaml
    echo "device: cuda" >> run.yaml
    SIMPO_ADAMW_OVERLAP=$ov "$BIN" run.yaml 2> train.log || bad "$dt overlap $ov: $(tail -3 train.log)"
  done
  grep -q "AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1): on" "$TMP/g_ov_${dt}_1/train.log" \
    && ok "$dt: AdamW inside the backward on" || bad "$dt: $(grep 'inside the backward' "$TMP/g_ov_${dt}_1/train.log")"
  same_state "$TMP/g_ov_${dt}_1" "$TMP/g_ov_${dt}_0" "cuda $dt, AdamW inside the backward vs after it"
done
finish
