#!/usr/bin/env bash
# Launch on one or several machines with Open MPI.
#   launch/mpirun.sh RANKS run.yaml [hostfile]      e.g. launch/mpirun.sh 16 configs/llama3-8b-instruct-simpo.yaml hosts
# A hostfile lists "hostname slots=GPUS" per line. Ranks are placed by slot, so TP (the innermost grid dimension)
# stays inside a node when tp divides the GPUs per node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
np=${1:?ranks}; cfg=${2:?config}; hosts=${3:-}
args=(-np "$np" --bind-to none --map-by slot)
[ -n "$hosts" ] && args+=(--hostfile "$hosts")
exec mpirun "${args[@]}" -x OMP_NUM_THREADS -x NCCL_DEBUG "$here/bind.sh" "$here/../build/simpo_dist" "$cfg"
