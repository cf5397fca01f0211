# SPDX-License-Identifier: MIT
"""Frames where MMFF94 + a correction head goes in MD, with their MMFF94 labels, for relabelling.

    python models/sample_head_md.py dense/source.h5 --model models/mrl-head-xtb.pt --output onpolicy.h5 \\
        [--ps 2] [--interval-ps 0.1] [--temperature-K 300] [--records 100]

A head fitted to frames of MMFF94 MD has not seen the geometries that MMFF94 + head MD reaches: where the
head is wrong (too attractive at a contact MMFF94 never made), MD walks into that region and the error
grows until the environment breaks.  This script runs MMFF94 + head MD from the first frame of each
record of a dataset (mrl-envgen build; cluster restraint as in build), and writes every ``--interval-ps``
a frame with its *MMFF94* labels (force groups 0 and 1; interaction = group 1; the head and the
restraint are not in the labels) into ``--output``, a dataset in docs/dataset.md's format with the
record's molecules, SMILES, formal charges and bonds.  A run stops at the first frame that is not intact
(``openmmmrl.head.md.intact``) or at an OpenMM error; the frames before it, and that frame when its
coordinates are finite and no two atoms are closer than 0.05 nm, are kept: they are the ones a
fine-tune must see.  ``python -m openmmmrl.relabel OUTPUT`` then adds GFN2-xTB labels.

Resumable: records whose key is in ``--output`` already are skipped.  Units: ps, K, nm, kJ/mol, kJ/mol/nm.
"""
import argparse
import json
import os
import sys

import numpy as np
import openmm

from openmmmrl.data import Dataset, DatasetWriter, Record
from openmmmrl.head.md import intact, mmff_head_system


def _state(context, groups):
    state = context.getState(getEnergy=True, getForces=True, getPositions=True, groups=groups)
    return (state.getPotentialEnergy()._value, state.getForces(asNumpy=True)._value,
            state.getPositions(asNumpy=True)._value)


def sample(record, model, picoseconds, interval_ps, temperature, timestep_ps, seed, threads):
    """The frames (positions, MMFF94 total and interaction energies and forces, time) of one record's
    MMFF94 + head run, and why it stopped ('' when it ran to the end)."""
    built = mmff_head_system(record, model, threads=threads)
    integrator = openmm.LangevinMiddleIntegrator(temperature, 1.0, timestep_ps)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(built.system, integrator, openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads)})
    context.setPositions(built.environment.positions)
    context.setVelocitiesToTemperature(temperature, seed)
    steps = max(1, int(round(interval_ps / timestep_ps)))
    center = built.environment.positions.mean(0)
    radius = built.environment.radius_nm + 0.3
    frames, reason = [], ""
    for k in range(int(round(picoseconds / interval_ps))):
        try:
            integrator.step(steps)
            total, total_f, x = _state(context, {0, 1})
            inter, inter_f, _ = _state(context, {1})
        except openmm.OpenMMException as error:
            reason = f"OpenMM: {str(error).splitlines()[0]}"
            break
        reason = intact(built.environment, x, center, radius)
        usable = np.isfinite(x).all() and np.isfinite(total_f).all() and _closest(x) > 0.05
        if usable:
            frames.append(((k + 1) * steps * timestep_ps, x, total, total_f, inter, inter_f))
        if reason:
            break
    return frames, reason


def _closest(x):
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def as_record(source, frames):
    """A Record with the source record's topology and the sampled frames."""
    f = len(frames)
    return Record(
        key=source.key, pair_id=source.pair_id, weight=source.weight, central_molecule=source.central_molecule,
        atomic_numbers=source.atomic_numbers, formal_charges=source.formal_charges,
        molecule_index=source.molecule_index, anchor=source.anchor, smiles=source.smiles,
        molecule_names=source.molecule_names, is_central=source.is_central, bonds=source.bonds,
        bond_orders=source.bond_orders, time=np.array([fr[0] for fr in frames]), box=np.zeros((f, 3, 3), np.float32),
        positions=np.stack([fr[1] for fr in frames]).astype(np.float32),
        total_energy=np.array([fr[2] for fr in frames]), total_forces=np.stack([fr[3] for fr in frames]).astype(np.float32),
        interaction_energy=np.array([fr[4] for fr in frames]),
        interaction_forces=np.stack([fr[5] for fr in frames]).astype(np.float32),
        direction_3dmrl=np.zeros((f, len(source.atomic_numbers), 3), np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="an MMFF94 dataset of clusters (mrl-envgen build, not --periodic)")
    parser.add_argument("--model", required=True, help="the correction head that drives the MD")
    parser.add_argument("--output", required=True, help="the dataset to write (appended to when it exists)")
    parser.add_argument("--ps", type=float, default=2.0, help="MD length per record, ps (default 2)")
    parser.add_argument("--interval-ps", type=float, default=0.1, help="time between frames, ps (default 0.1)")
    parser.add_argument("--temperature-K", type=float, default=300.0, help="Langevin temperature, K (default 300)")
    parser.add_argument("--timestep-ps", type=float, default=0.001, help="time step, ps (default 0.001)")
    parser.add_argument("--records", type=int, default=None, help="only the first N records (default all)")
    parser.add_argument("--seed", type=int, default=1, help="velocity and thermostat seed (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of OpenMM and the head (default 1)")
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k not in ("output", "threads")}
    options["model"] = os.path.basename(args.model)
    attributes = {"tool": "models/sample_head_md.py", "command_line": " ".join(sys.argv),
                  "options_json": json.dumps(options, sort_keys=True), "force_field": "MMFF94",
                  "temperature_K": args.temperature_K, "timestep_ps": args.timestep_ps, "seed": args.seed,
                  "interaction_forces": "force_groups:1"}
    done = set()
    if os.path.exists(args.output):
        with Dataset(args.output) as existing:
            done = {r.key for r in existing.records()}
    summary = {"records": 0, "frames": 0, "stopped": {}, "already_present": 0}
    with Dataset(args.data) as data, DatasetWriter(args.output, attributes) as writer:
        records = list(data.records())[: args.records]
        for n, record in enumerate(records):
            if record.key in done:
                summary["already_present"] += 1
                continue
            frames, reason = sample(record, args.model, args.ps, args.interval_ps, args.temperature_K,
                                    args.timestep_ps, args.seed + n, args.threads)
            if frames:
                writer.add_record(as_record(record, frames))
                summary["records"] += 1
                summary["frames"] += len(frames)
            if reason:
                summary["stopped"][record.key] = f"{frames[-1][0] if frames else 0:.2f} ps: {reason}"
            print(f"[{n + 1}/{len(records)}] {record.key}: {len(frames)} frames"
                  + (f", stopped: {reason}" if reason else ""), flush=True)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
