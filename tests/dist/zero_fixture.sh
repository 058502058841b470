# ZeRO-1/2 (AdamW moments and gradients sharded over data-parallel ranks) under mpirun on the tiny-a fixture:
# parameters after step 2 equal the HF float64 reference for several layouts, ZeRO-1 equals the replicated
# optimizer bit for bit, and checkpoints written with sharded moments resume under other layouts.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
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
finish
