# The gradient norm formed inside AdamW (optim_step_norm, backend adamw_sumsq) when nothing clips
# (optim.max_grad_norm: 0) and a non-finite norm stops the run (train.nonfinite: stop, the default): the same run as
# the separate norm pass before the step (which train.nonfinite: skip keeps), bitwise on the CPU: every logged
# number, the parameters and the AdamW moments after step 2, on one rank, the strict backend, ZeRO over 2 DP ranks
# (each rank's shard, the sums all-reduced) and TP 2 (the replicated gains counted once); and an injected NaN still
# stops the run naming the step and the tensor, writing nothing for that step.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
# case NAME NP PARALLEL [ENV...]: the fixture with max_grad_norm 0 trained fused (stop) and separate (skip)
fused_case() {
  local name=$1 np=$2 par=$3; shift 3
  for mode in stop skip; do
    setup "$name-$mode" 1
    sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/; s/max_steps: 2, seed: 0}/max_steps: 2, seed: 0, nonfinite: '$mode'}/' run.yaml
    [ -n "$par" ] && echo "parallel: $par" >> run.yaml
    if env "$@" $MPI "$np" "$BIN" run.yaml 2> train.log; then :; else bad "$name $mode failed: $(tail -3 train.log)"; fi
  done
  same_state "$TMP/$name-stop" "$TMP/$name-skip" "$name (fused vs the separate pass)"
}
fused_case one 1 ""
fused_case strict 1 "" SIMPO_BACKEND=cpu_strict
fused_case zero2 2 "{zero: 2}"
fused_case tp2 2 "{tp: 2}"
# the norm is not 0 (it was formed), and the op profile shows which path ran: no sum-of-squares pass without
# clipping, one before AdamW with it
[ "$(metric "$TMP/one-stop/out/metrics.jsonl" 1 grad_norm | cut -c1-3)" != "0" ] && ok "the logged norm is formed" \
  || bad "grad_norm: $(metric "$TMP/one-stop/out/metrics.jsonl" 1 grad_norm)"
setup prof 2
sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' run.yaml
SIMPO_PROFILE=1 "$BIN" run.yaml 2> prof.log
grep -q "profile rank 0: *adamw_sumsq " prof.log && ! grep -qE "profile rank 0: +sumsq(_many)? " prof.log \
  && ok "without clipping the step runs adamw_sumsq and no sumsq pass" || bad "profile: $(grep 'profile rank 0:  ' prof.log | head -8)"
setup profclip 2
SIMPO_PROFILE=1 "$BIN" run.yaml 2> prof.log
grep -qE "profile rank 0: +sumsq(_many)? " prof.log && grep -q "profile rank 0: *adamw " prof.log \
  && ok "with clipping the norm pass comes first, then adamw" || bad "profile (clip): $(grep 'profile rank 0:  ' prof.log | head -8)"
# a NaN gradient under the fused path: the run stops naming the step and the tensor and writes nothing for it
setup nan 2
sed -i 's/max_grad_norm: 1.0/max_grad_norm: 0.0/; s/every_steps: 2/every_steps: 1/' run.yaml
expect_error "fused: stop names the step" "step 2: non-finite gradient norm" env SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml
SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml 2>&1 | grep -q "first non-finite gradient in tensor 'model.layers" \
  && ok "fused: stop names the first tensor" || bad "fused stop: tensor not named"
[ "$(cat out/latest)" = "step-00000001" ] && [ ! -e out/step-00000002 ] && ok "fused: stop writes nothing for the step" \
  || bad "fused stop left: $(ls out)"
finish
