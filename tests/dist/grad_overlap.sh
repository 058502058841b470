# parallel.overlap_grad_reduce (mpi/grad_allreduce.h): under ZeRO 0 and 1 with several data-parallel ranks the
# gradient's all-reduce goes in units (a layer, the final norm with an untied head, a dense untied embedding, then
# what lies between and after them: a tied embedding, the padding), each started, non-blocking, the moment the step's
# last backward completes it. The units are the same with the overlap off (every unit after the backward), so on the
# tiny-a fixture both give the same loss, gradient norm, parameters and moments bit for bit, also on three ranks
# (where an all-reduce's summation order depends on its message), and the fixture's HF parameters after two steps:
# dp2 and dp3 under ZeRO 0 and 1, fp32 and bf16 (sharded master weights), a dense embedding gradient, dp2 x tp2,
# dp2 x pp2 (1F1B), tied embeddings across two stages (the tied gradient, summed by the pipeline after the step, goes
# after the backward), recompute; the trace (SIMPO_TRACE=dp) shows the layers' units starting inside the backward.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
# pair NAME NP PARALLEL [MICRO] [TRAIN_KEYS] [DTYPE]: trains the fixture under PARALLEL (overlap on: auto) in
# $TMP/NAME and with parallel.overlap_grad_reduce: false in $TMP/NAME_off; both alike bit for bit, the fixture's
# parameters after step 2, and at least MIN_EARLY (default 2: tiny-a's two layers) units a step started inside the
# backward on rank 0 (the trace's), none with the overlap off
pair() {
  local name=$1 np=$2 par=$3 micro=${4:-1} keys=${5:-} dt=${6:-}
  for v in on off; do
    local d=$name; [ $v = off ] && d=${name}_off
    setup "$d" "$micro"
    [ -n "$keys" ] && sed -i "s/^train: {/train: {$keys, /" run.yaml
    [ -n "$dt" ] && sed -i "s/^model: {init: model}/model: {init: model, dtype: $dt}/" run.yaml
    if [ $v = off ]; then echo "parallel: ${par%\}}, overlap_grad_reduce: false}" >> run.yaml; else echo "parallel: $par" >> run.yaml; fi
    if SIMPO_TRACE=dp $MPI "$np" "$BIN" run.yaml 2> train.log; then ok "$d trains"; else bad "$d failed: $(tail -3 train.log)"; continue; fi
    local early after
    early=$(grep -c "started in the backward" train.log); after=$(grep -c "started after the backward" train.log)
    if [ $v = on ]; then
      [ "$early" -ge $((2 * ${MIN_EARLY:-2})) ] && grep -q "each started as the step's last backward completes it" train.log \
        && ok "$d: $early units started inside the backward over 2 steps ($after after)" || bad "$d: $early units inside the backward"
      check_log "$d" train.log
    else
      [ "$early" -eq 0 ] && [ "$after" -ge 2 ] && grep -q "after the backward: parallel.overlap_grad_reduce: false" train.log \
        && ok "$d: every unit after the backward ($after)" || bad "$d: $early inside, $after after the backward"
    fi
    if [ -z "$dt" ]; then
      "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$d params = step2" || bad "$d params"
    fi
  done
  same_state "$TMP/$name" "$TMP/${name}_off" "$name: overlapped = after the backward"
}
pair dp2_z0 2 "{zero: 0}"
pair dp2_z1 2 "{zero: 1}" 3                                  # one micro-batch of 3 pairs a step
pair dp3_z0 3 "{zero: 0}"                                    # three ranks: the summation order depends on the message
pair dp3_z1_dense 3 "{zero: 1}" 1 "sparse_embedding_grad: false" # the embedding's dense gradient, the last unit to start
grep -q "all-reduce of flat \[0, [0-9]*) started in the backward" "$TMP/dp3_z1_dense/train.log" \
  && ok "dp3 dense: the embedding's unit starts in the backward" || bad "dp3 dense: $(grep 'started' "$TMP/dp3_z1_dense/train.log" | head -4)"
pair dp2_tp2_z1 4 "{tp: 2, zero: 1}"
MIN_EARLY=1 pair dp2_pp2_z0 4 "{pp: 2, zero: 0}"             # 1F1B: each stage's last backward (rank 0's trace:
                                                             # stage 0, one layer)
pair dp2_z1_rc 2 "{zero: 1}" 1 "recompute: true"
pair b_dp3_z1 3 "{zero: 1}" 1 "" bf16                        # the bf16 copy made from the sharded master weights
# tied embeddings across two stages: its gradient is a unit of its own, after the pipeline sums the two copies
for v in on off; do
  setup_tied tied_$v; sed -i 's/max_steps: 3/max_steps: 2/' base.yaml; cp base.yaml run.yaml
  [ $v = on ] && echo "parallel: {pp: 2, zero: 1}" >> run.yaml || echo "parallel: {pp: 2, zero: 1, overlap_grad_reduce: false}" >> run.yaml
  SIMPO_TRACE=dp $MPI 4 "$BIN" run.yaml 2> train.log && ok "tied pp2 dp2 overlap $v trains" || bad "tied $v: $(tail -3 train.log)"
done
grep -q "started in the backward" "$TMP/tied_on/train.log" && ok "tied: units inside the backward" || bad "tied: none inside the backward"
same_state "$TMP/tied_on" "$TMP/tied_off" "tied pp2 dp2: overlapped = after the backward"
# ZeRO 2 and 3 (the gradient partitioned: every micro-batch's buckets reduce-scattered into the shard): with true two
# bucket buffers, a bucket's reduce-scatter travelling while the backward writes the next (one bucket more memory,
# which the plan counts); the same numbers bit for bit as one buffer (auto without a known memory budget, as on these
# CPU ranks), each bucket's sum added into the shard in the order the buckets started
pair2() { # NAME NP PARALLEL [MICRO] [DTYPE]
  local name=$1 np=$2 par=$3 micro=${4:-1} dt=${5:-}
  for v in on off; do
    local d=$name; [ $v = off ] && d=${name}_off
    setup "$d" "$micro"
    [ -n "$dt" ] && sed -i "s/^model: {init: model}/model: {init: model, dtype: $dt}/" run.yaml
    if [ $v = on ]; then echo "parallel: ${par%\}}, overlap_grad_reduce: true}" >> run.yaml; else echo "parallel: $par" >> run.yaml; fi
    if SIMPO_TRACE=dp $MPI "$np" "$BIN" run.yaml 2> train.log; then ok "$d trains"; else bad "$d failed: $(tail -3 train.log)"; continue; fi
    check_log "$d" train.log
    local early; early=$(grep -c "reduce-scatter of flat .* started in the backward" train.log)
    if [ $v = on ]; then
      [ "$early" -ge 4 ] && grep -q "two bucket buffers: each bucket's sum travels while the backward writes the next" train.log \
        && ok "$d: $early bucket reduce-scatters left while the backward went on" || bad "$d: $early in the backward"
    else
      [ "$early" -eq 0 ] && grep -q "one bucket buffer: each bucket's sum before the next" train.log \
        && ok "$d: one bucket buffer by default" || bad "$d: $early reduce-scatters traced with one buffer"
    fi
    [ -z "$dt" ] && { "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$d params = step2" || bad "$d params"; }
  done
  same_state "$TMP/$name" "$TMP/${name}_off" "$name: two bucket buffers = one"
}
pair2 dp2_z2 2 "{zero: 2}"
# auto (the default) under zero 2: one buffer without a known memory budget (host memory: pair2's one-buffer runs),
# two where the budget holds the plan with them, one where it does not; the numbers bit for bit alike either way
for b in 80 0.00204; do # tiny-a at dp2: 2,108,548 bytes planned with one buffer, 2,281,092 with two
  setup z2_auto_$b; echo "parallel: {zero: 2}" >> run.yaml
  SIMPO_DEVICE_MEMORY_GIB=$b $MPI 2 "$BIN" run.yaml 2> train.log && ok "zero 2 auto in $b GiB trains" || bad "z2 auto $b: $(tail -3 train.log)"
  check_log "zero 2 auto in $b GiB" train.log
done
grep -q "parallel.overlap_grad_reduce auto: stage 0 two buffers" "$TMP/z2_auto_80/train.log" && grep -q "two bucket buffers: each" "$TMP/z2_auto_80/train.log" \
  && ok "zero 2 auto: two buffers in 80 GiB" || bad "zero 2 auto 80: $(grep 'overlap_grad_reduce\|bucket buffer' "$TMP/z2_auto_80/train.log")"
grep -q "parallel.overlap_grad_reduce auto: stage 0 one buffer" "$TMP/z2_auto_0.00204/train.log" && grep -q "one bucket buffer: each" "$TMP/z2_auto_0.00204/train.log" \
  && ok "zero 2 auto: one buffer in 0.00204 GiB" || bad "zero 2 auto 0.00204: $(grep 'overlap_grad_reduce\|bucket buffer' "$TMP/z2_auto_0.00204/train.log")"
same_state "$TMP/z2_auto_80" "$TMP/z2_auto_0.00204" "zero 2 auto: two buffers = one"
pair2 dp3_z2 3 "{zero: 2}"
pair2 dp2_tp2_z2 4 "{tp: 2, zero: 2}"
pair2 dp2_z3 2 "{zero: 3}"
pair2 b_dp2_z3 2 "{zero: 3}" 1 bf16
# a stage whose only bucket is its layer (pp 4 of a 4-layer model), three micro-batches: the same bucket's sums of
# consecutive micro-batches in flight from both buffers at once, added in the order they started
for v in on off; do
  setup_tied z2pp4_$v; sed -i 's/max_steps: 3/max_steps: 2/; s/global_batch_pairs: 4/global_batch_pairs: 6/' base.yaml
  grep -q "global_batch_pairs: 6" base.yaml || bad "z2pp4: base.yaml has no global_batch_pairs 6"
  cp base.yaml run.yaml
  [ $v = on ] && echo "parallel: {pp: 4, zero: 2, overlap_grad_reduce: true}" >> run.yaml || echo "parallel: {pp: 4, zero: 2}" >> run.yaml
  $MPI 8 "$BIN" run.yaml 2> train.log && ok "tied pp4 dp2 zero2 buffers $v trains" || bad "z2pp4 $v: $(tail -3 train.log)"
  check_log "z2pp4 $v" train.log
done
same_state "$TMP/z2pp4_on" "$TMP/z2pp4_off" "tied pp4 dp2 zero2, three micro-batches: two bucket buffers = one"
finish
