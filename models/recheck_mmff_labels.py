# SPDX-License-Identifier: MIT
"""Recomputes the MMFF94 interaction labels of a relabelled dataset with today's createMMFFSystem and
scores a correction head against GFN2-xTB with that baseline.

    python models/recheck_mmff_labels.py xtb.h5 --model models/mrl-head-xtb.pt --split models/mrl-trunk-mmff94.split.json

Before commit e8d8346, the MMFF94 builder typed every molecule joined after the first one without its rings
(RDKit's insertMol left them out of the ring info), so the MMFF94 labels of environments whose partner has a
ring (pyridine, benzene, dioxane, ...) are wrong in datasets built earlier, some by 300-440 kJ/mol.  This
prints how many records are affected and the head's held-out errors (the test molecules of --split) with
the stored and with the recomputed MMFF94 baseline: target = GFN2-xTB - MMFF94.  Units: kJ/mol, kJ/mol/nm.
"""
import argparse
import dataclasses
import json

import numpy as np
import openmm
import torch

from openmmmrl import createMMFFSystem, moleculesFromRecord
from openmmmrl.data import Dataset
from openmmmrl.head.batch import load_frames
from openmmmrl.head.evaluate import correction_errors


def mmff_context(record):
    """A Reference Context of the record's MMFF94 System (today's createMMFFSystem)."""
    system = createMMFFSystem(moleculesFromRecord(record, 0))
    return openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))


def mmff_interaction(context, record, frame):
    """MMFF94's intermolecular energy (group 1, kJ/mol) and its forces (kJ/mol/nm) at one frame."""
    context.setPositions(np.asarray(record.positions[frame], np.float64))
    state = context.getState(getEnergy=True, getForces=True, groups={1})
    return state.getPotentialEnergy()._value, state.getForces(asNumpy=True)._value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="a dataset with the gfn2 label set (python -m openmmmrl.relabel)")
    parser.add_argument("--model", required=True, help="an exported correction head")
    parser.add_argument("--split", required=True, help="a split.json whose test molecules are scored")
    args = parser.parse_args()
    test = set(json.load(open(args.split))["groups"]["test"])
    stored = load_frames([args.data])
    delta = load_frames([args.data], delta_of="gfn2")
    with Dataset(args.data) as data:
        records = {r.key: r for r in data.records()}
    affected, fixed, contexts, seen = set(), [], {}, {}
    for mmff, target in zip(stored, delta):
        key = mmff.source.split(":", 1)[1]
        frame = seen.get(key, 0)
        seen[key] = frame + 1
        if mmff.group not in test or not target.has_interaction:
            continue
        if key not in contexts:
            contexts = {key: mmff_context(records[key])}  # frames of a record are consecutive: keep one
        energy, forces = mmff_interaction(contexts[key], records[key], frame)
        if abs(energy - mmff.interaction_energy) > 1.0:
            affected.add(key)
        xtb_energy = target.interaction_energy + mmff.interaction_energy
        xtb_forces = target.interaction_forces.astype(np.float64) + mmff.interaction_forces
        fixed.append(dataclasses.replace(target, interaction_energy=float(xtb_energy - energy),
                                         interaction_forces=(xtb_forces - forces).astype(np.float32)))
    module = torch.jit.load(args.model).double()
    old = correction_errors(module, [f for f in delta if f.group in test and f.has_interaction])[0]
    new = correction_errors(module, fixed)[0]
    summary = {"test_frames": len(fixed), "test_records_with_wrong_mmff94_labels": len(affected),
               "stored_baseline": {k: old[k] for k in ("interaction_energy", "interaction_forces")},
               "recomputed_baseline": {k: new[k] for k in ("interaction_energy", "interaction_forces")},
               "worst_molecules_recomputed": new["per_molecule"][:8]}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
