# SPDX-License-Identifier: MIT
"""GFN2-xTB energies and forces of a frame, its interaction part included, through tblite.

The interaction energy is the whole frame's energy minus each molecule's energy alone, at the same
positions, each molecule with the sum of its atoms' formal charges; the interaction forces are the same
difference of forces.  Units in and out are OpenMM's (nm, kJ/mol, kJ/mol/nm); tblite works in Bohr and
Hartree.  Set ``OMP_NUM_THREADS=1`` before tblite loads when running one calculation per process.
"""
from dataclasses import dataclass
from typing import Dict

import numpy as np

#: CODATA 2018: 1 Hartree in kJ/mol and 1 Bohr in nm.
HARTREE_KJ_PER_MOL = 2625.4996394798254
BOHR_NM = 0.0529177210903
#: 1 Hartree/Bohr in kJ/mol/nm.
HARTREE_PER_BOHR_KJ_PER_MOL_NM = HARTREE_KJ_PER_MOL / BOHR_NM


class LabelError(RuntimeError):
    """A frame that the method could not label (e.g. the SCF did not converge), with the reason."""


@dataclass
class FrameLabels:
    total_energy: float          #: kJ/mol
    interaction_energy: float    #: kJ/mol
    total_forces: np.ndarray     #: [N, 3] kJ/mol/nm
    interaction_forces: np.ndarray  #: [N, 3] kJ/mol/nm

    def as_dict(self) -> Dict[str, np.ndarray]:
        return {"total_energy": self.total_energy, "interaction_energy": self.interaction_energy,
                "total_forces": self.total_forces, "interaction_forces": self.interaction_forces}


def method_description(method: str = "GFN2-xTB") -> str:
    """The method and the tblite version, as a label set's ``method`` attribute, e.g. "GFN2-xTB (tblite 0.8.0)"."""
    from importlib import metadata
    return f"{method} (tblite {metadata.version('tblite')})"


def singlepoint(numbers: np.ndarray, positions_nm: np.ndarray, charge: int, method: str = "GFN2-xTB",
                accuracy: float = 1.0, max_iterations: int = 250):
    """Energy (kJ/mol) and forces (kJ/mol/nm, [N, 3]) of one molecule or cluster; LabelError when tblite
    fails (e.g. no SCF convergence).  Unpaired electrons: 0 for an even electron count, else 1."""
    from tblite.interface import Calculator
    numbers = np.asarray(numbers, dtype=np.int32)
    electrons = int(numbers.sum()) - int(charge)
    try:
        calculator = Calculator(method, numbers, np.asarray(positions_nm, dtype=np.float64) / BOHR_NM,
                                charge=float(charge), uhf=electrons % 2)
        calculator.set("verbosity", 0)
        calculator.set("accuracy", accuracy)
        calculator.set("max-iter", max_iterations)
        result = calculator.singlepoint()
    except Exception as e:  # tblite raises its own error type (not exported everywhere) for SCF failures
        raise LabelError(f"{method} failed ({len(numbers)} atoms, charge {charge}): {str(e).strip()}") from None
    energy = float(result.get("energy")) * HARTREE_KJ_PER_MOL
    forces = -np.asarray(result.get("gradient"), dtype=np.float64) * HARTREE_PER_BOHR_KJ_PER_MOL_NM
    return energy, forces


def label_frame(numbers: np.ndarray, formal_charges: np.ndarray, molecule_index: np.ndarray,
                positions_nm: np.ndarray, method: str = "GFN2-xTB") -> FrameLabels:
    """The method's total and interaction energy and forces of one frame (see the module docstring)."""
    numbers, molecule_index = np.asarray(numbers), np.asarray(molecule_index)
    charges = np.asarray(formal_charges)
    total, forces = singlepoint(numbers, positions_nm, int(charges.sum()), method)
    alone_energy, alone_forces = 0.0, np.zeros_like(forces)
    for m in np.unique(molecule_index):
        atoms = np.flatnonzero(molecule_index == m)
        energy, f = singlepoint(numbers[atoms], positions_nm[atoms], int(charges[atoms].sum()), method)
        alone_energy += energy
        alone_forces[atoms] = f
    return FrameLabels(total, total - alone_energy, forces, forces - alone_forces)
