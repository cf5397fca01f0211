# SPDX-License-Identifier: MIT
"""MD of an interaction environment with MMFF94 + the shipped correction head through MRLForce.

    python examples/run_head.py                                   # pyridine in 5 waters, 2 ps
    python examples/run_head.py --central "CC(=O)Nc1ccc(O)cc1" --partner CO --steps 5000
    python examples/run_head.py --model models/mrl-head-mmff94.pt  # the older head that imitates MMFF94

1. mrl-envgen builds the environment from the SMILES pair: RDKit conformers, the central molecule with
   --copies partner copies placed around it without clashes, MMFF94 minimization.
2. The System is MMFF94 (createMMFFSystem, the C++ builder of mrl-envgen: intramolecular terms in force
   group 0, intermolecular in group 1) plus the correction head's MRLForce (group 2), which adds the
   GFN2-xTB - MMFF94 difference of the intermolecular energy (zero for a molecule alone), with the
   flat-bottom cluster restraint of mrl-envgen (group 3); Langevin MD at --temperature on the CPU platform.
3. Prints at the start the interaction energy from MMFF94, from MMFF94 + head and from GFN2-xTB (tblite,
   at the same positions), then energies as it runs and ns/day, and writes a trajectory (PDB + DCD), the
   energies (CSV) and a plot (PNG) in --output.

A force head (models/mrl-head-mmff94.pt, energy "total") instead replaces MMFF94 by the head alone, and
the start compares it with MMFF94.  pyridine is held out of the training of both shipped heads (see
models/mrl-head-xtb.md); water as its partner is not in the imitation head's pairs.
Units: nm, ps, K, kJ/mol.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)

import openmm  # noqa: E402
import openmm.app as app  # noqa: E402
import openmm.unit as unit  # noqa: E402
import torch  # noqa: E402

from openmmmrl import Dataset  # noqa: E402
from openmmmrl.head.batch import load_frames, make_batch  # noqa: E402
from openmmmrl.head.export import load_script, model_metadata  # noqa: E402
from openmmmrl.head.md import Environment, head_system  # noqa: E402
from openmmmrl.head.plots import energy_trace  # noqa: E402
from openmmmrl.head.predict import predict  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_environment(args, workdir):
    """One environment from mrl-envgen (minimized, one MMFF94-labelled frame); its dataset path."""
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    if not os.path.exists(envgen):
        raise SystemExit(f"{envgen} is missing: run scripts/setup.sh (or ./demo.sh) first")
    pairs = os.path.join(workdir, "pair.csv")
    with open(pairs, "w") as f:
        f.write(f"central,partner,id\n{args.central},{args.partner},demo\n")
    data = os.path.join(workdir, "environment.h5")
    result = subprocess.run([envgen, "build", pairs, "--output", data, "--copies", str(args.copies),
                             "--central", "first", "--equilibration", "0", "--steps", "1", "--interval", "1",
                             "--seed", str(args.seed), "--quiet", "--overwrite"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"mrl-envgen could not build the environment:\n{result.stderr}")
    with Dataset(data) as d:
        if len(d) == 0:
            reasons = "; ".join(f"{key}: {why}" for key, _, why in d.skipped())
            raise SystemExit(f"mrl-envgen skipped the pair {args.central} / {args.partner}: {reasons}")
        return Environment.from_record(d.record(0)), d.record(0), data


def topology_of(record):
    top = app.Topology()
    chain = top.addChain()
    atoms = []
    for m in range(record.num_molecules):
        residue = top.addResidue("CEN" if record.is_central[m] else "PAR", chain)
        for i in np.flatnonzero(record.molecule_index == m):
            element = app.Element.getByAtomicNumber(int(record.atomic_numbers[i]))
            atoms.append((i, top.addAtom(f"{element.symbol}{i}", element, residue)))
    by_index = dict(atoms)
    for a, b in record.bonds:
        top.addBond(by_index[int(a)], by_index[int(b)])
    return top


def model_energy_kind(path):
    """The model's "energy" metadata: "intermolecular" for a correction head, "total" for a force head."""
    return model_metadata(load_script(path)).get("energy", "total")


def correction_start(args, record, frame, threads):
    """The MMFF94 + head System of the environment (``head.md.mmff_head_system``) and its start positions."""
    from openmmmrl.head.md import mmff_head_system
    built = mmff_head_system(record, args.model, threads=int(threads))
    return built.system, built.environment.positions, "potential (MMFF94 + head + restraint)", {}


def correction_energies(context, frame, positions):
    """Prints and returns the interaction energy at the start from MMFF94 (force group 1), MMFF94 + head
    (+ group 2) and GFN2-xTB (tblite at the same positions)."""
    from openmmmrl.labels.xtb import LabelError, label_frame

    def group_energy(group):
        state = context.getState(getEnergy=True, groups={group})
        return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    mmff, head = group_energy(1), group_energy(2)
    try:
        xtb = label_frame(frame.atomic_numbers, frame.formal_charges, frame.molecule_index, positions).interaction_energy
        xtb_text = f"{xtb:.1f}"
    except LabelError as error:
        xtb, xtb_text = float("nan"), f"not available ({error})"
    print(f"at the start, interaction energy (kJ/mol): MMFF94 {mmff:.1f}, MMFF94 + head {mmff + head:.1f}, "
          f"GFN2-xTB {xtb_text}")
    return {"start_interaction_energy_kj_mol": {"mmff94": mmff, "mmff94_plus_head": mmff + head, "gfn2_xtb": xtb},
            "start_mmff94_label_kj_mol": float(frame.interaction_energy)}  # mrl-envgen's: all minus each alone


def force_head_start(args, env, frame, threads):
    """The force head's System (head alone + restraint); prints the head against MMFF94 at the start."""
    module = load_script(args.model).double()
    start = predict(module, make_batch([frame], module.cutoff_nm, dtype=torch.float64))
    forces, inter_energy, inter_forces = start.forces.numpy(), float(start.interaction_energy[0]), start.interaction_forces.numpy()
    rms = float(np.sqrt(np.mean(frame.total_forces.astype(float) ** 2)))
    print(f"at the start, head vs MMFF94: interaction energy {inter_energy:.1f} vs {frame.interaction_energy:.1f} kJ/mol; "
          f"force MAE {np.mean(np.abs(forces - frame.total_forces)):.1f} kJ/mol/nm (MMFF94 RMS force {rms:.1f}), "
          f"interaction force MAE {np.mean(np.abs(inter_forces - frame.interaction_forces)):.1f} kJ/mol/nm")
    packed = head_system(args.model, [env])
    packed.force.setProperty("Threads", threads)
    summary = {"start_force_mae_vs_mmff94_kj_mol_nm": float(np.mean(np.abs(forces - frame.total_forces)))}
    return packed.system, packed.positions, "potential (head + restraint)", summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--central", default="c1ccncc1", help="SMILES of the central molecule (default pyridine)")
    parser.add_argument("--partner", default="O", help="SMILES of the partner molecule (default water)")
    parser.add_argument("--copies", type=int, default=5, help="partner copies around the central molecule")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "mrl-head-xtb.pt"),
                        help="a graph/1 correction head (MMFF94 + head) or force head (head alone); default: the "
                             "shipped correction head models/mrl-head-xtb.pt")
    parser.add_argument("--steps", type=int, default=2000, help="MD steps (default 2000)")
    parser.add_argument("--timestep-fs", type=float, default=1.0, help="time step, fs (default 1)")
    parser.add_argument("--temperature", type=float, default=300.0, help="Langevin temperature, K")
    parser.add_argument("--report-interval", type=int, default=200, help="steps between reports and frames")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (placement, velocities)")
    parser.add_argument("--output", default=os.path.join(ROOT, "out", "demo"), help="output directory")
    args = parser.parse_args()
    if not os.path.exists(args.model):
        raise SystemExit(f"{args.model}: no such model file (the shipped heads are models/mrl-head-xtb.pt and "
                         f"models/mrl-head-mmff94.pt)")
    os.makedirs(args.output, exist_ok=True)
    threads = str(args.threads or os.cpu_count())
    correction = model_energy_kind(args.model) == "intermolecular"

    with tempfile.TemporaryDirectory() as workdir:
        env, record, data = build_environment(args, workdir)
        frame = load_frames([data])[0]
    print(f"environment: {args.central} with {args.copies} x {args.partner}: {len(env.atomic_numbers)} atoms, "
          f"{record.num_molecules} molecules (built and MMFF94-minimized by mrl-envgen)")
    start = correction_start if correction else force_head_start
    system, positions, potential_label, start_summary = start(args, record if correction else env, frame, threads)

    dt = args.timestep_fs / 1000.0
    integrator = openmm.LangevinMiddleIntegrator(args.temperature, 1.0, dt)
    integrator.setRandomNumberSeed(args.seed)
    simulation = app.Simulation(topology_of(record), system, integrator,
                                openmm.Platform.getPlatformByName("CPU"), {"Threads": threads})
    simulation.context.setPositions(positions)
    if correction:
        start_summary.update(correction_energies(simulation.context, frame, positions))
    simulation.context.setVelocitiesToTemperature(args.temperature, args.seed)
    pdb = os.path.join(args.output, "trajectory.pdb")
    with open(pdb, "w") as f:
        app.PDBFile.writeFile(simulation.topology, positions * 10.0, f)
    simulation.reporters.append(app.DCDReporter(os.path.join(args.output, "trajectory.dcd"), args.report_interval))
    rows = []
    print(f"{'time (ps)':>10} {'potential (kJ/mol)':>19} {'kinetic (kJ/mol)':>17} {'T (K)':>8}")
    dof = 3 * system.getNumParticles()
    began = time.perf_counter()
    for step in range(args.report_interval, args.steps + 1, args.report_interval):
        simulation.step(args.report_interval)
        state = simulation.context.getState(getEnergy=True)
        pot = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        kin = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        temperature = 2 * kin / (dof * 0.0083144626)
        rows.append((step * dt, pot, kin, temperature))
        print(f"{step * dt:10.3f} {pot:19.2f} {kin:17.2f} {temperature:8.1f}", flush=True)
    seconds = time.perf_counter() - began
    ns_day = args.steps * dt / 1000.0 / (seconds / 86400.0)
    table = np.array(rows)
    np.savetxt(os.path.join(args.output, "energies.csv"), table, delimiter=",",
               header="time_ps,potential_kj_mol,kinetic_kj_mol,temperature_k", comments="")
    title = "MMFF94 + correction head MD" if correction else "force head MD"
    energy_trace(table[:, 0], {potential_label: table[:, 1], "kinetic": table[:, 2], "total": table[:, 1] + table[:, 2]},
                 os.path.join(args.output, "energies.png"), f"{args.central} + {args.copies} x {args.partner}, {title}")
    summary = {"model": os.path.abspath(args.model), "system": "MMFF94 + head" if correction else "head alone",
               "atoms": system.getNumParticles(), "steps": args.steps, "timestep_fs": args.timestep_fs,
               "seconds": seconds, "ns_per_day": ns_day, "ms_per_step": 1e3 * seconds / max(args.steps, 1),
               "threads": int(threads), "mean_temperature_k": float(table[len(table) // 2:, 3].mean()),
               **start_summary, "output": os.path.abspath(args.output)}
    print(f"{ns_day:.2f} ns/day ({summary['ms_per_step']:.2f} ms/step, {threads} threads); trajectory "
          f"{pdb} + trajectory.dcd, plot energies.png in {args.output}")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
