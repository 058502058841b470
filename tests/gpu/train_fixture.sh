# The trainer on the CUDA backend (label gpu; exit 77, skipped, without a CUDA build or device): the tiny-a fixture
# trained 2 steps with device: cuda equals the HF float64 parameters after step 2 (check_params, the fixture
# README's rule) on 1 rank, and on 2 and 4 ranks sharing the one GPU through the MPI collectives (device buffers
# staged through host memory); a 2-rank run equals the 1-rank run; parallel.backend: nccl on 1 rank; and the log
# names the CUDA backend and its peak device memory.
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
run_gpu g_tp2 2 1 "{tp: 2}"
run_gpu g_pp2 2 2 "{pp: 2}"
run_gpu g_tp2_pp2 4 2 "{tp: 2, pp: 2}"
run_gpu g_nccl 1 2 "{backend: nccl}"
grep -q "collectives nccl" train.log && ok "nccl selected" || bad "nccl not selected: $(grep -i collectives train.log | head -2)"
finish
