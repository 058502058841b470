#!/bin/bash
# tests/gpu/emu/run.sh [BUILD_DIR [TEST [ARGS...]]] — checks the CUDA backend's kernel logic without a GPU:
# compiles the .cu files of cuda/ with g++ against the emulation headers of this directory (cu2cpp.py rewrites
# the launches), links tests/gpu/test_*.c with them and runs them. BUILD_DIR (default build/) must be a configured
# and built tree: its libsimpo.a and the compile flags / link line of tests/model/test_tiny_a are reused.
# TEST (test_cuda_ops, test_cuda_model, train_overlap, train_tune, train_seqpar, train_zero3, train_grad_overlap) runs one test, with ARGS (test_cuda_ops takes a section: attn, xent, ...).
# Slow (every GPU thread is a coroutine): a few minutes for everything; the perf section is skipped. The numbers
# are CPU numbers (glibc expf, no FMA contraction): this validates indexing, tiling, masking, barriers and
# reductions, not GPU rounding. EMU_OUT sets the output folder (default BUILD_DIR/cuda-emu).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
B=$(cd "${1:-$SRC/build}" && pwd)
only=${2:-}
args=("${@:3}")
EMU=$SRC/tests/gpu/emu
O=${EMU_OUT:-$B/cuda-emu}
mkdir -p "$O"
CXX=${CXX:-g++}
FL="-O2 -g -std=c++17 -fno-exceptions -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -I$EMU -I$SRC/cuda -I$SRC/src"
objs=("$O/emu.o")
$CXX $FL -c "$EMU/emu.cpp" -o "$O/emu.o"
for f in "$SRC"/cuda/*.cu; do
  n=$(basename "$f" .cu)
  python3 "$EMU/cu2cpp.py" "$f" "$O/$n.cpp"
  $CXX $FL -c "$O/$n.cpp" -o "$O/$n.o"
  objs+=("$O/$n.o")
done
flags=$B/CMakeFiles/test_tiny_a.dir/flags.make
incs=$(sed -n 's/^C_INCLUDES = //p' "$flags")
defs=$(sed -n 's/^C_DEFINES = //p' "$flags")
cfl=$(sed -n 's/^C_FLAGS = //p' "$flags")
link=$(cat "$B/CMakeFiles/test_tiny_a.dir/link.txt")
# the real CUDA backend and cuBLAS out; the rest of the link line (libsimpo.a and its dependencies) as is
link=$(echo "$link" | sed -e 's# cuda/libsimpo_cuda.a##g' -e 's# [^ ]*libcublas[^ ]*##g' -e 's# [^ ]*libculibos[^ ]*##g')
rc=0
cd "$B"
for t in "$SRC"/tests/gpu/test_*.c; do
  n=$(basename "$t" .c)
  # shellcheck disable=SC2086
  if [ -n "$only" ] && [ "$n" != "$only" ]; then continue; fi
  eval cc $cfl $defs $incs -I"$SRC/cuda" -I"$SRC/tests" -I"$SRC/tests/ops" -I"$SRC/tests/model" -D_GNU_SOURCE -c "$t" -o "$O/$n.o"
  l=${link/CMakeFiles\/test_tiny_a.dir\/tests\/model\/test_tiny_a.c.o/$O/$n.o ${objs[*]}}
  l=${l/-o test_tiny_a/-o $O/$n}
  eval "$l -lstdc++"
  echo "== $n (CPU emulation)"
  if SIMPO_GPU_SKIP_PERF=1 SIMPO_CUDA_CHECK_HOLDS=1 SIMPO_FIXTURES=$SRC/tests/fixtures OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 "$O/$n" "${args[@]}"; then :; else
    echo "FAILED: $n (exit $?)"; rc=1
  fi
done
# The trainer itself on the emulated backend (simpo_dist linked as test_tiny_a is): the tiny-a fixture in the bf16
# mode with the weight copy, 6 micro-batches a step, max_grad_norm 0, with AdamW inside the backward
# (SIMPO_ADAMW_OVERLAP=1: the updates on the late stream, which the emulation runs only when waited for; the sparse
# embedding gradient's free rows before the forwards) and
# without: the same losses, norms and margins and the same parameters and moments after step 2, bit for bit, so
# every read of the updated state waits for the late stream (a missing join reads the values from before the step).
# Then (train_tune) the GEMM tune path (SIMPO_CUDA_GEMM=tune, matmul.cu lt_tune) against lt in the same setting
# without the overlap: the same numbers bit for bit, each fp32-output shape timed once on a call that writes its
# output (the emulation's heuristic offers four algorithms: the choice is the second, the first's bits at full speed),
# the step's accumulating calls (the weight gradients' second micro-batch, beta 1) never timed.
if [ -z "$only" ] || [ "$only" = train_overlap ] || [ "$only" = train_tune ] || [ "$only" = train_seqpar ] ||
   [ "$only" = train_zero3 ] || [ "$only" = train_grad_overlap ]; then
  l=$(sed -e 's# cuda/libsimpo_cuda.a##g' -e 's# [^ ]*libcublas[^ ]*##g' -e 's# [^ ]*libculibos[^ ]*##g' \
        "$B/CMakeFiles/simpo_dist.dir/link.txt")
  l=${l/CMakeFiles\/simpo_dist.dir\/src\/main.c.o/CMakeFiles/simpo_dist.dir/src/main.c.o ${objs[*]}}
  l=${l/-o simpo_dist/-o $O/simpo_dist}
  eval "$l -lstdc++"
  T=$O/train_overlap
  train() { # CASE ENV...: tiny-a in the bf16 mode on the emulated backend, max_grad_norm 0, one pair per micro-batch
    rm -rf "${T:?}/$1" && mkdir -p "$T/$1" && cp -r "$SRC/tests/fixtures/tiny-a/." "$T/$1/"
    sed -i -e 's/^model: {/model: {dtype: bf16, /' -e 's/max_grad_norm: 1.0/max_grad_norm: 0.0/' \
        -e 's/micro_batch_pairs: 2/micro_batch_pairs: 1/' "$T/$1/run.yaml"
    echo "device: cuda" >> "$T/$1/run.yaml"
    if [ "${EVAL:-0}" = 1 ]; then # the held-out evaluation of the same pairs at the start and after every step
      sed -i -e 's/shuffle: false}/shuffle: false, eval: pairs.jsonl}/' \
          -e 's/seed: 0}/seed: 0, eval_on_start: true, eval_every_steps: 1}/' "$T/$1/run.yaml"
    fi
    local c=$1; shift
    if ! (cd "$T/$c" && env "$@" OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 "$O/simpo_dist" run.yaml 2> train.log); then
      echo "FAILED: the emulated trainer's run $c ($*): $(tail -3 "$T/$c/train.log")"; return 1
    fi
  }
  train2() { # CASE PARALLEL LABEL [ENV...]: tiny-a in the bf16 mode on two ranks sharing the emulated GPU (MPI staging
             # its buffers through the host) under PARALLEL (one pair per micro-batch); every rank's allocation equals
             # the memory plan and its step-1 traffic the formulas
    local c=$1 par=$2 label=$3; shift 3
    rm -rf "${T:?}/$c" && mkdir -p "$T/$c" && cp -r "$SRC/tests/fixtures/tiny-a/." "$T/$c/"
    sed -i -e 's/^model: {/model: {dtype: bf16, /' -e 's/micro_batch_pairs: 2/micro_batch_pairs: 1/' "$T/$c/run.yaml"
    printf 'device: cuda\nparallel: %s\n' "$par" >> "$T/$c/run.yaml"
    if ! (cd "$T/$c" && env "$@" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
          OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -np 2 "$O/simpo_dist" run.yaml 2> train.log); then
      echo "FAILED: $label: $(tail -3 "$T/$c/train.log")"; return 1
    fi
    grep -q "backend cuda bf16" "$T/$c/train.log" || { echo "FAILED: $label: not on the emulated cuda backend"; return 1; }
    [ "$(grep "memory plan rank" "$T/$c/train.log" | awk '{for (i=1;i<=NF;i++) {if ($i=="planned") p=$(i+1); if ($i=="allocated") a=$(i+1)}; if (p==a) n++} END {print n+0}')" = 2 ] \
      && [ "$(grep "comm bytes rank" "$T/$c/train.log" | grep -oE "[0-9]+/[0-9]+" | awk -F/ '$1!=$2' | wc -l)" = 0 ] \
      && [ "$(grep -c "comm bytes rank" "$T/$c/train.log")" = 2 ] \
      || { echo "FAILED: $label: plan: $(grep -m2 'memory plan\|comm bytes' "$T/$c/train.log")"; return 1; }
  }
  nums() { grep -oE '"(loss|grad_norm|rewards/margins)": [-0-9.eE+]*' "$1/out/metrics.jsonl"; }
  same_run() { # A B LABEL: every logged number and the parameters and moments after step 2, bit for bit
    local good=1
    [ -n "$(nums "$T/$1")" ] && [ "$(nums "$T/$1")" = "$(nums "$T/$2")" ] \
      || { echo "FAILED: $3: $(nums "$T/$2" | tr '\n' ' ') vs $(nums "$T/$1" | tr '\n' ' ')"; good=0; }
    for d in param exp_avg exp_avg_sq; do
      h5diff -q "$T/$1/out/step-00000002/index.h5" "$T/$2/out/step-00000002/index.h5" /$d /$d \
        || { echo "FAILED: $3: /$d after step 2 differs"; good=0; }
    done
    [ $good = 1 ]
  }
fi
if [ -z "$only" ] || [ "$only" = train_tune ]; then
  echo "== train_tune (the trainer on the CPU emulation)"
  ok=1
  train lt SIMPO_CUDA_GEMM=lt || ok=0
  train tune SIMPO_CUDA_GEMM=tune SIMPO_TRACE=gemm || ok=0
  same_run lt tune "train_tune: tune against lt" || ok=0
  n=$(grep -c '^\[gemm\] .* fp32 out, aligned [0-9/]*: algorithm 1 of 4 (2 with the heuristic.s bits)' "$T/tune/train.log")
  [ "$n" -gt 4 ] && [ "$(grep -c '^\[gemm\]' "$T/tune/train.log")" = "$n" ] \
    && [ "$(grep -o '^\[gemm\] [^:]*' "$T/tune/train.log" | sort | uniq -d | wc -l)" = 0 ] \
    || { echo "FAILED: train_tune: $n fp32-output shapes timed, each once, algorithm 1 of 4:"\
              "$(grep -m4 '^\[gemm\]' "$T/tune/train.log")"; ok=0; }
  if [ $ok = 1 ]; then echo "train_tune: bitwise the lt path's run ($n GEMM shapes timed, each once)"; else rc=1; fi
fi
# Sequence parallelism on the emulated backend: tiny-a in the bf16 mode under tp2 (two ranks sharing the emulated GPU,
# MPI staging its buffers through the host), with parallel.sequence_parallel and without: every rank's allocation
# equals the memory plan and its step-1 traffic the formulas, and the losses, margins and gradient norms agree within
# 1e-3 (the norms' gain gradients are summed in another order, so not bit for bit)
if [ -z "$only" ] || [ "$only" = train_seqpar ]; then
  echo "== train_seqpar (the trainer on the CPU emulation, 2 ranks)"
  ok=1
  for sp in false true; do
    train2 sp_$sp "{tp: 2, sequence_parallel: $sp}" "train_seqpar $sp" || ok=0
  done
  grep -q "reduce_scatter [1-9]" "$T/sp_true/train.log" || { echo "FAILED: train_seqpar: no reduce-scatter"; ok=0; }
  python3 - "$T/sp_false/out/metrics.jsonl" "$T/sp_true/out/metrics.jsonl" <<'PY' || { echo "FAILED: train_seqpar: the runs differ"; ok=0; }
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
keys = ["loss", "rewards/margins", "grad_norm"]
sys.exit(0 if len(a) == 2 and len(b) == 2 and all(math.isfinite(y[k]) and abs(x[k] - y[k]) <= 1e-3 * max(1, abs(x[k]))
                                                  for x, y in zip(a, b) for k in keys) else 1)
PY
  if [ $ok = 1 ]; then echo "train_seqpar: memory and traffic as planned, the numbers of tp2 without it (1e-3)"; else rc=1; fi
fi
# ZeRO-3 on the emulated backend: tiny-a in the bf16 mode on two data-parallel ranks sharing the emulated GPU, zero 2
# and zero 3 (the bf16 copy in shards, each layer's views all-gathered from device memory, staged through the host,
# before its forward and backward): every rank's allocation equals the plan and its step-1 traffic the formulas, and
# the two runs' losses, norms, margins, parameters and moments are the same bit for bit
if [ -z "$only" ] || [ "$only" = train_zero3 ]; then
  echo "== train_zero3 (the trainer on the CPU emulation, 2 ranks)"
  ok=1
  for z in 2 3; do
    train2 zero_$z "{zero: $z}" "train_zero3 zero $z" SIMPO_CHECK_WEIGHTS16=1 || ok=0
  done
  grep -q "bf16 weight copy too (ZeRO-3" "$T/zero_3/train.log" || { echo "FAILED: train_zero3: not ZeRO-3"; ok=0; }
  same_run zero_2 zero_3 "train_zero3: zero 3 against zero 2" || ok=0
  if [ $ok = 1 ]; then echo "train_zero3: memory and traffic as planned, zero 2's numbers bit for bit"; else rc=1; fi
fi
# The data-parallel all-reduce of ZeRO 1 in units started inside the last backward (parallel.overlap_grad_reduce) on
# the emulated backend: two ranks sharing the emulated GPU, each unit copied to the host when it starts and its sum
# copied back when the step waits for it (comm_iallreduce_sum_f32's staging); the same numbers bit for bit as every
# unit after the backward, memory and traffic as planned; and ZeRO-2's bucket reduce-scatters from two buffers
# (comm_ireduce_scatterv_f32's staging) against one
if [ -z "$only" ] || [ "$only" = train_grad_overlap ]; then
  echo "== train_grad_overlap (the trainer on the CPU emulation, 2 ranks)"
  ok=1
  train2 gr_on "{zero: 1}" "train_grad_overlap on" SIMPO_TRACE=dp || ok=0
  train2 gr_off "{zero: 1, overlap_grad_reduce: false}" "train_grad_overlap off" SIMPO_TRACE=dp || ok=0
  n=$(grep -c "started in the backward" "$T/gr_on/train.log" || true)
  [ "$n" -ge 4 ] && ! grep -q "started in the backward" "$T/gr_off/train.log" \
    || { echo "FAILED: train_grad_overlap: $n units started inside the backward"; ok=0; }
  same_run gr_off gr_on "train_grad_overlap: overlapped against after the backward" || ok=0
  # ZeRO-2 with two bucket buffers: each bucket's reduce-scatter staged to the host and its part of the sum copied
  # back and added into the shard when the buffer is taken again or the step ends
  train2 gr2_on "{zero: 2, overlap_grad_reduce: true}" "train_grad_overlap zero 2 two buffers" SIMPO_TRACE=dp || ok=0
  train2 gr2_off "{zero: 2, overlap_grad_reduce: false}" "train_grad_overlap zero 2 one buffer" || ok=0
  n2=$(grep -c "reduce-scatter of flat .* started in the backward" "$T/gr2_on/train.log" || true)
  [ "$n2" -ge 8 ] || { echo "FAILED: train_grad_overlap: $n2 bucket reduce-scatters with two buffers"; ok=0; }
  same_run gr2_off gr2_on "train_grad_overlap: zero 2 with two bucket buffers against one" || ok=0
  if [ $ok = 1 ]; then echo "train_grad_overlap: $n units inside the backward over 2 steps, the numbers of none bit for bit; zero 2's $n2 bucket sums from two buffers, those of one"; else rc=1; fi
fi
if [ -z "$only" ] || [ "$only" = train_overlap ]; then
  echo "== train_overlap (the trainer on the CPU emulation)"
  ok=1
  for ov in 0 1 p; do # p: overlapped under the op profile, which synchronises around every op, late ones too
    # 1 and p also evaluate (data.eval) between the steps: the forward after an overlapped update reads its weights
    EVAL=$([ $ov = 0 ] && echo 0 || echo 1) \
      train "$ov" SIMPO_ADAMW_OVERLAP=${ov/p/1} SIMPO_PROFILE=$([ $ov = p ] && echo 1 || echo 0) SIMPO_TRACE=adamw || ok=0
  done
  # the evaluation after step k: what step k + 1 logs training on the same pairs, bit for bit (bf16, overlap on)
  python3 - "$T/1/out/eval.jsonl" "$T/0/out/metrics.jsonl" <<'PY' || { echo "FAILED: train_overlap: eval.jsonl"; ok=0; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
tr = {r["step"]: r for r in map(json.loads, open(sys.argv[2]))}
keys = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "logps/chosen", "logps/rejected"]
sys.exit(0 if [r["step"] for r in ev] == [0, 1, 2] and
         all(ev[k]["eval_" + x] == tr[k + 1][x] for k in (0, 1) for x in keys) else 1)
PY
  grep -q "backend cuda bf16" "$T/1/train.log" && grep -q "inside the backward (SIMPO_ADAMW_OVERLAP=1): on" "$T/1/train.log" \
    && [ "$(grep -c '^\[adamw\] step 2: .* updated in the backward' "$T/1/train.log")" = 5 ] \
    && [ "$(grep -c '^\[adamw\] step 2: the free rows of .* updated before the forward' "$T/1/train.log")" = 1 ] \
    || { echo "FAILED: train_overlap: not on the cuda backend, or not 5 updates inside step 2's backward (the head,"\
              "each layer's two parts) and 1 before it"; ok=0; }
  for r in 1 p; do same_run 0 "$r" "train_overlap ($r)" || ok=0; done
  grep -q "profile rank 0: *adamw_sumsq " "$T/p/train.log" || { echo "FAILED: train_overlap: no op profile"; ok=0; }
  if [ $ok = 1 ]; then echo "train_overlap: bitwise the run without it, also under the op profile and with evaluations between the steps (loss, norm, margins; parameters, moments; eval after step k = step k + 1)"
  else rc=1; fi
fi
exit $rc
