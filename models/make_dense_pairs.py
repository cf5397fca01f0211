# SPDX-License-Identifier: MIT
"""Pairs for dense water shells: central molecules of a split with 14 or 20 waters around them, and clusters
of water alone, for mrl-envgen build (the correction head's bulk-like frames; models/reproduce-xtb.sh).

    python models/make_dense_pairs.py --split models/mrl-trunk-mmff94.split.json --output-dir out/xtb

Writes DIR/dense-pairs.csv (64 training and 12 test molecules with 4-16 heavy atoms and 14 waters; 6
clusters of 16 waters; 2 methanols with 12 waters) and DIR/dense2-pairs.csv (140 more training and 12 more
test molecules with 4-18 heavy atoms and 20 waters; 16 clusters of 24 waters).  Neutral molecules only.
Test molecules stay test molecules (the split is by central molecule), so their shells are held out too.
"""
import argparse
import csv
import json
import os
import random

from rdkit import Chem


def _fits(smiles, low, high):
    mol = Chem.MolFromSmiles(smiles)
    return mol is not None and low <= mol.GetNumHeavyAtoms() <= high and Chem.GetFormalCharge(mol) == 0


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["central", "partner", "id", "copies"])
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", required=True, help="a split.json of python -m openmmmrl.train")
    parser.add_argument("--output-dir", required=True, help="where dense-pairs.csv and dense2-pairs.csv go")
    parser.add_argument("--seed", type=int, default=5, help="the shuffle's seed (default 5)")
    args = parser.parse_args()
    groups = json.load(open(args.split))["groups"]
    rng = random.Random(args.seed)
    train = [g for g in groups["train"] if _fits(g, 4, 16)]
    test = [g for g in groups["test"] if _fits(g, 4, 16)]
    rng.shuffle(train)
    rng.shuffle(test)
    first = [(c, "O", f"d{k:03d}-train-water14", 14) for k, c in enumerate(train[:64])]
    first += [(c, "O", f"d{k + 100:03d}-test-water14", 14) for k, c in enumerate(test[:12])]
    first += [("O", "O", f"d{k + 200:03d}-water16", 15) for k in range(6)]
    first += [("CO", "O", f"d{k + 300:03d}-methanol-water", 12) for k in range(2)]
    used = {row[0] for row in first}
    train2 = [g for g in groups["train"] if _fits(g, 4, 18) and g not in used]
    test2 = [g for g in groups["test"] if _fits(g, 4, 18) and g not in used]
    rng.shuffle(train2)
    rng.shuffle(test2)
    second = [(c, "O", f"e{k:03d}-train-water20", 20) for k, c in enumerate(train2[:140])]
    second += [(c, "O", f"e{k + 200:03d}-test-water20", 20) for k, c in enumerate(test2[:12])]
    second += [("O", "O", f"e{k + 300:03d}-water24", 23) for k in range(16)]
    os.makedirs(args.output_dir, exist_ok=True)
    _write(os.path.join(args.output_dir, "dense-pairs.csv"), first)
    _write(os.path.join(args.output_dir, "dense2-pairs.csv"), second)
    print(f"{len(first)} + {len(second)} pairs in {args.output_dir}/dense-pairs.csv, dense2-pairs.csv")


if __name__ == "__main__":
    main()
