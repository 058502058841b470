# Non-finite values (injected: SIMPO_INJECT_NONFINITE=K puts a NaN into a gradient of rank 0 at step K):
# train.nonfinite: stop ends the run with an error naming the step and the tensor and writes nothing for that step;
# skip leaves parameters and optimizer state untouched for that step, logs and counts it, and goes on.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
setup stop 2; sed -i 's/every_steps: 2/every_steps: 1/' run.yaml
expect_error "stop names step and tensor" "step 2: non-finite gradient norm" env SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml
SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml 2>&1 | grep -q "first non-finite gradient in tensor 'model.layers" \
  && ok "stop names the first tensor" || bad "stop: tensor not named"
[ "$(cat out/latest)" = "step-00000001" ] && [ ! -e out/step-00000002 ] && ok "stop writes nothing for the step" \
  || bad "stop left: $(ls out)"
setup stop_mpi 1; echo "parallel: {zero: 2}" >> run.yaml
n=$(SIMPO_INJECT_NONFINITE=1 $MPI 2 "$BIN" run.yaml 2>&1 | grep -c "non-finite gradient norm")
[ "$n" -eq 1 ] && ok "stop under mpirun reported once" || bad "stop under mpirun reported $n times"
setup skip 2; sed -i 's/every_steps: 2/every_steps: 1/; s/max_steps: 2/max_steps: 3/' run.yaml
echo "train: {global_batch_pairs: 6, micro_batch_pairs: 2, max_steps: 3, seed: 0, nonfinite: skip}" >> run.yaml
sed -i '0,/^train:/{/^train:/d}' run.yaml
SIMPO_INJECT_NONFINITE=2 "$BIN" run.yaml 2> skip.log && ok "skip: run completes" || bad "skip failed: $(tail -3 skip.log)"
grep -q "step 2: non-finite loss .* update skipped" skip.log && ok "skip: logged" || bad "skip log: $(cat skip.log)"
[ "$(metric out/metrics.jsonl 2 skipped_steps)" = 1 ] && [ "$(metric out/metrics.jsonl 3 skipped_steps)" = 1 ] \
  && ok "skip: counted in metrics" || bad "skipped_steps: $(cat out/metrics.jsonl | cut -c1-60)"
for g in param exp_avg exp_avg_sq; do
  h5diff -q out/step-00000001/index.h5 out/step-00000002/index.h5 /$g /$g && ok "skip: /$g unchanged by step 2" \
    || bad "skip changed /$g"
done
h5diff -q out/step-00000002/index.h5 out/step-00000003/index.h5 /param /param && bad "step 3 did not update" \
  || ok "step 3 updates again"
finish
