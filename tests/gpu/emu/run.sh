#!/bin/bash
# tests/gpu/emu/run.sh [BUILD_DIR [TEST [ARGS...]]] — checks the CUDA backend's kernel logic without a GPU:
# compiles the .cu files of cuda/ with g++ against the emulation headers of this directory (cu2cpp.py rewrites
# the launches), links tests/gpu/test_*.c with them and runs them. BUILD_DIR (default build/) must be a configured
# and built tree: its libsimpo.a and the compile flags / link line of tests/model/test_tiny_a are reused.
# TEST (test_cuda_ops, test_cuda_model) runs one test, with ARGS (test_cuda_ops takes a section: attn, xent, ...).
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
exit $rc
