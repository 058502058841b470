# The strict CPU backend (SIMPO_BACKEND=cpu_strict: device memory emulated with PROT_NONE addresses, every op's
# pointers checked) under mpirun: the collectives stage backend buffers through host memory as they would GPU
# buffers, and the parameters after step 2 of the tiny-a fixture equal the HF float64 reference for 2- and 4-rank
# layouts (data, tensor and pipeline parallel, ZeRO-1/2, sequence parallel), a tied LM head across pipeline stages equals the 1-rank
# run, a checkpoint moves between layouts; plus the backend / collectives selection errors.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
export SIMPO_BACKEND=cpu_strict
MPI="mpirun --oversubscribe --bind-to none -x SIMPO_BACKEND -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -np"
strict_log() { grep -q "backend cpu_strict fp32, collectives mpi" "$2" && ok "$1 ran on cpu_strict" || bad "$1: not on cpu_strict"; }
run_case s_dp2_zero1 2 1 "{zero: 1}"; strict_log dp2_zero1 train.log
run_case s_dp2_zero2 2 1 "{zero: 2}"
run_case s_tp2 2 1 "{tp: 2}"
run_case s_pp2 2 2 "{pp: 2}"
run_case s_dp2_tp2_zero2 4 1 "{tp: 2, zero: 2}"
run_case s_tp2_pp2 4 2 "{tp: 2, pp: 2}"; strict_log tp2_pp2 train.log
run_case s_pp2_dp2_zero1 4 1 "{pp: 2, zero: 1}"
# sequence parallelism: every op on a block of the rows, every gather and reduce-scatter on backend buffers, checked
run_case s_tp2_pp2_sp 4 1 "{tp: 2, pp: 2, sequence_parallel: true}"; strict_log tp2_pp2_sp train.log
run_case s_dp2_tp2_zero2_sp 4 1 "{tp: 2, zero: 2, sequence_parallel: true}"
# save under tp2 x pp2 after step 1, resume under dp2 x zero2 (both strict)
setup s_a2b 1; cp base.yaml a.yaml; cp base.yaml b.yaml
echo "parallel: {tp: 2, pp: 2}" >> a.yaml; echo "parallel: {zero: 2}" >> b.yaml
$MPI 4 "$BIN" a.yaml --stop-at-step 1 2> a.log && $MPI 2 "$BIN" b.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "strict tp2 pp2 -> dp2 zero2" || bad "strict a2b: $(tail -2 a.log b.log)"

# tied embeddings: the last stage's mirror of the embedding gets the first stage's gradient (sendrecv + add)
setup_tied s_tied
SIMPO_BACKEND=cpu "$BIN" base.yaml 2> one.log && "$BIN" export --checkpoint out --out ref 2>/dev/null \
  && ok "tied 1-rank CPU reference" || bad "tied ref: $(tail -3 one.log)"
for layout in "pp2:2:{pp: 2}" "pp2tp2:4:{pp: 2, tp: 2}"; do
  name=${layout%%:*}; rest=${layout#*:}; np=${rest%%:*}; par=${rest#*:}
  sed "s|dir: out|dir: out_$name|" base.yaml > $name.yaml; echo "parallel: $par" >> $name.yaml
  if $MPI $np "$BIN" $name.yaml 2> $name.log; then ok "strict tied $name trains"; else bad "strict tied $name: $(tail -3 $name.log)"; fi
  "$TOOLS/check_params" out_$name ref/model.safetensors && ok "strict tied $name = 1 rank" || bad "strict tied $name differs"
done

# selection errors
setup s_err 1
expect_error "unknown SIMPO_BACKEND" "SIMPO_BACKEND: unknown backend 'gpu9'" env SIMPO_BACKEND=gpu9 "$BIN" run.yaml
cp base.yaml nccl.yaml; echo "parallel: {backend: nccl}" >> nccl.yaml
expect_error "nccl on the strict backend" "parallel.backend: nccl needs GPU buffers" $MPI 2 "$BIN" nccl.yaml
if ! nvidia-smi -L >/dev/null 2>&1; then
  cp base.yaml cuda.yaml; echo "device: cuda" >> cuda.yaml
  expect_error "device: cuda without a GPU or a CUDA build" "device: cuda" env -u SIMPO_BACKEND "$BIN" cuda.yaml
fi
finish
