#!/usr/bin/env bash
# PBS Pro / OpenPBS: qsub -l select=8:ncpus=64:ngpus=8:mpiprocs=8 -v CFG=configs/llama3-8b-instruct-simpo.yaml launch/pbs.sh
# PBS pre-empts with SIGTERM (forwarded by mpirun): ranks checkpoint and exit 0; resubmit to resume.
#PBS -N simpo_dist
#PBS -j oe
set -euo pipefail
cd "$PBS_O_WORKDIR"
np=$(wc -l < "$PBS_NODEFILE")
exec mpirun -np "$np" --hostfile "$PBS_NODEFILE" --bind-to none --map-by slot -x OMP_NUM_THREADS=8 \
  launch/bind.sh build/simpo_dist "${CFG:?set CFG to the config}"
