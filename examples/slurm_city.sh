#!/bin/bash
# lod3d city on a SLURM cluster: one MPI rank per core, one compute thread per rank.
# Submit with:  sbatch examples/slurm_city.sh   (see docs/cluster.md for sizing)
#SBATCH --job-name=lod3d-city
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=64
#SBATCH --cpus-per-task=1
#SBATCH --mem-per-cpu=2G
#SBATCH --time=02:00:00
#SBATCH --output=lod3d-%j.log
set -euo pipefail

# The project's virtual environment (make setup), on a filesystem every node sees.
VENV=${VENV:-$HOME/lod3d/.venv}
OUT=${OUT:-$SCRATCH/lod3d/toulouse}

export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Numba compiles its kernels once into a cache; give every rank the same writable one.
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$SCRATCH/lod3d/numba-cache}

# srun starts the ranks; the venv's mpi4py (MPICH ABI) talks to the cluster's PMI.
# Images: Pleiades tri-stereo with RPCs (GeoTIFF tags, .geom or DIMAP beside them).
srun --mpi=pmi2 "$VENV/bin/lod3d" -q city \
    --bounds 1.38 43.56 1.50 43.66 --crs EPSG:4326 \
    --images /data/pleiades/IMG_P1.tif /data/pleiades/IMG_P2.tif /data/pleiades/IMG_P3.tif \
    --out "$OUT" --tile-m 250 --resume

# A job killed by its time limit is resubmitted unchanged: --resume skips finished tiles.
