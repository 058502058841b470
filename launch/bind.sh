#!/usr/bin/env bash
# Per-rank wrapper: pins each rank to one GPU from its node-local rank (Open MPI or Slurm variables), then runs
# the command. Used by the launchers below: mpirun ... launch/bind.sh simpo_dist run.yaml
lr=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-${PMI_LOCAL_RANK:-0}}}
if [ -z "${CUDA_VISIBLE_DEVICES:-}" ] && command -v nvidia-smi >/dev/null 2>&1; then
  export CUDA_VISIBLE_DEVICES=$lr
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$@"
