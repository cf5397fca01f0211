# SPDX-License-Identifier: MIT
"""Langevin MD of the first record of a periodic dataset (mrl-envgen build --periodic) with MMFF94 + a
correction head and with MMFF94 alone, printing the total potential and the head's energy every 100 steps.

    python models/check_box.py box.h5 --model models/mrl-head-xtb.pt [--steps 500] [--cutoff-nm 0.9]

What the model card's periodic-box failure was measured with.  Units: kJ/mol, nm, 300 K, 1 fs, CPU platform.
"""
import argparse

import openmm

from openmmmrl.data import Dataset
from openmmmrl.head.md import mmff_head_system


def run(built, with_head, steps, threads):
    system = built.system
    if not with_head:
        system.removeForce(next(k for k in range(system.getNumForces()) if system.getForce(k).getForceGroup() == 2))
    integrator = openmm.LangevinMiddleIntegrator(300, 1, 0.001)
    integrator.setRandomNumberSeed(2)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})
    context.setPeriodicBoxVectors(*(openmm.Vec3(*row) for row in built.environment.box))
    context.setPositions(built.environment.positions)
    context.setVelocitiesToTemperature(300, 2)
    label = "MMFF94 + head" if with_head else "MMFF94 alone"
    for k in range(steps // 100):
        try:
            integrator.step(100)
        except openmm.OpenMMException as error:
            print(f"{label}: stopped after {100 * k} steps: {error}")
            return
        total = context.getState(getEnergy=True).getPotentialEnergy()._value
        head = context.getState(getEnergy=True, groups={2}).getPotentialEnergy()._value
        print(f"{label}: step {100 * (k + 1)}: potential {total:.1f}, head {head:.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="a periodic dataset (mrl-envgen build --periodic)")
    parser.add_argument("--model", required=True, help="an exported correction head")
    parser.add_argument("--steps", type=int, default=500, help="MD steps of each run (default 500)")
    parser.add_argument("--cutoff-nm", type=float, default=0.9, help="periodic MMFF94's cutoff, nm (the dataset's)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    args = parser.parse_args()
    with Dataset(args.data) as data:
        record = data.record(0)
    for with_head in (True, False):
        run(mmff_head_system(record, args.model, cutoff_nm=args.cutoff_nm), with_head, args.steps, args.threads)


if __name__ == "__main__":
    main()
