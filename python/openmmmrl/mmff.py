# SPDX-License-Identifier: MIT
"""The MMFF94 baseline of a user's own molecules: :func:`createMMFFSystem`.

>>> from rdkit import Chem
>>> from openmmmrl import createMMFFSystem
>>> water = Chem.AddHs(Chem.MolFromSmiles("O"))
>>> system = createMMFFSystem([Chem.AddHs(Chem.MolFromSmiles("CCO")), water, water])

The System is the one ``mrl-envgen build`` builds for the same molecules: both come from the one C++ builder
(``MRLPlugin::createMMFFSystem``, tools/src/MMFFSystem.cpp), reached through the SWIG module
``openmmmrl.mmff_core``.  Molecules cross to C++ as MDL mol blocks.
"""
from openmm import unit
from rdkit import Chem

from . import mmff_core

__all__ = ["createMMFFSystem", "moleculesFromRecord"]


def _nanometers(value, name):
    """A length given as an openmm.unit Quantity or a plain number in nm, as a float in nm."""
    if unit.is_quantity(value):
        if not value.unit.is_compatible(unit.nanometer):
            raise TypeError(f"{name} must be a length (e.g. 1.0*unit.nanometer), not a quantity in {value.unit}")
        value = value.value_in_unit(unit.nanometer)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a length in nm (a number or an openmm.unit Quantity), not "
                        f"{type(value).__name__}")
    return float(value)


def _molecule_name(index, mol):
    """How molecule `index` is named in error messages: its index in the argument and its SMILES."""
    try:
        smiles = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
    except Exception:  # an unsanitizable molecule: the index alone
        return f"molecules[{index}]"
    return f"molecules[{index}] ({smiles})"


def _mol_block(index, mol):
    """Molecule `index` as an MDL mol block (Kekulé bonds, explicit hydrogens, formal charges kept)."""
    if not isinstance(mol, Chem.Mol):
        raise TypeError(f"molecules[{index}] is a {type(mol).__name__}, not an RDKit molecule: pass "
                        f"rdkit.Chem.Mol objects, e.g. Chem.AddHs(Chem.MolFromSmiles(smiles))")
    try:
        return Chem.MolToMolBlock(mol, kekulize=True)
    except Exception as error:  # e.g. aromatic flags that RDKit cannot kekulize
        raise ValueError(f"molecules[{index}] cannot be written as a mol block ({error}); pass a molecule that "
                         f"RDKit can sanitize (Chem.SanitizeMol(mol) shows the problem)") from None


def createMMFFSystem(molecules, variant="MMFF94", periodic=False, cutoff=1.0 * unit.nanometer,
                     switchWidth=0.1 * unit.nanometer, dielectric=1.0):
    """Create the MMFF94 OpenMM System of some molecules, as ``mrl-envgen build`` creates it.

    Parameters
    ----------
    molecules : sequence of rdkit.Chem.Mol (or one Mol)
        The molecules of the System, in order, each with every hydrogen an atom (``Chem.AddHs(mol)``) and each a
        single fragment (split salts and mixtures with ``Chem.GetMolFrags(mol, asMols=True)``).  Particle i is
        atom i of the molecules taken in order; molecule m of the System is ``molecules[m]``, so
        ``MRLForce.setMoleculeIndices`` takes m for each of its atoms.  Conformers are not used: positions come
        from the Context, in nm (RDKit's are in Å: ``mol.GetConformer().GetPositions() / 10``).
    variant : str
        ``"MMFF94"`` or ``"MMFF94s"``.
    periodic : bool
        False: no cutoff, every pair.  True: every force uses periodic boundary conditions and the intermolecular
        nonbonded force a cutoff (as ``mrl-envgen build --periodic``); set the box with
        ``system.setDefaultPeriodicBoxVectors`` or on the Context.  Each molecule must be smaller than half the box.
    cutoff : float (nm) or openmm.unit Quantity
        Periodic only: the intermolecular nonbonded cutoff.
    switchWidth : float (nm) or openmm.unit Quantity
        Periodic only: pair energies are switched off smoothly over [cutoff - switchWidth, cutoff] (0: no switch).
    dielectric : float
        MMFF's constant dielectric D (1 is MMFF94's own).

    Returns
    -------
    openmm.System
        Masses and forces in OpenMM's units (nm, kJ/mol).  Intramolecular terms (all bonded terms, nonbonded pairs
        within one molecule) are in force group 0; the intermolecular nonbonded force ("MMFF94 intermolecular
        nonbonded", vdW and electrostatics between different molecules, present with two molecules or more) is in
        force group 1, so ``context.getState(getEnergy=True, groups={1})`` gives the interaction energy.

    Raises
    ------
    TypeError
        When an entry is not an RDKit molecule, or a length is not a length.
    ValueError
        With the C++ builder's message, naming the molecule (``molecules[m]`` and its SMILES) and the atom (its
        index within that molecule): implicit hydrogens, an atom MMFF94 cannot type, several fragments in one
        entry, or an invalid option.
    """
    if isinstance(molecules, Chem.Mol):
        molecules = [molecules]
    try:
        molecules = list(molecules)
    except TypeError:
        raise TypeError(f"molecules must be a list of RDKit molecules, not {type(molecules).__name__}") from None
    if not molecules:
        raise ValueError("createMMFFSystem needs at least one molecule: pass a list of RDKit molecules, e.g. "
                         "[Chem.AddHs(Chem.MolFromSmiles('CCO'))]")
    blocks = [_mol_block(index, mol) for index, mol in enumerate(molecules)]
    names = [_molecule_name(index, mol) for index, mol in enumerate(molecules)]
    options = mmff_core.MMFFOptions()
    options.variant = str(variant)
    options.periodic = bool(periodic)
    options.cutoffNm = _nanometers(cutoff, "cutoff")
    options.switchWidthNm = _nanometers(switchWidth, "switchWidth")
    options.dielectric = float(dielectric)
    return mmff_core.createMMFFSystemFromMolBlocks(blocks, names, options)


def moleculesFromRecord(record, frame: int = 0):
    """The RDKit molecules of a dataset record (an ``openmmmrl.data.Record`` of an MMFF94 environment), in the
    record's order, with the frame's coordinates: one Mol per molecule, atoms in the record's order, from the
    record's elements, formal charges, bonds and bond orders (1, 1.5 aromatic, 2, 3).  The atoms of each
    molecule must be contiguous (as ``mrl-envgen`` writes them), so that
    ``createMMFFSystem(moleculesFromRecord(record))`` numbers its particles as the record does."""
    import numpy as np
    from rdkit import Geometry
    record = record.normalized()
    molecule = np.asarray(record.molecule_index)
    if len(molecule) and np.any(np.diff(molecule) < 0) or len(np.unique(molecule)) != record.num_molecules:
        raise ValueError(f"record {record.key!r}: the atoms of each molecule must be contiguous and in molecule "
                         f"order to rebuild the molecules in the record's atom order")
    if np.any(record.bond_orders == 0):
        raise ValueError(f"record {record.key!r} has bonds of unknown order (0): its molecules cannot be rebuilt "
                         f"for MMFF94 (carved records have no bond orders)")
    bond_types = {1.0: Chem.BondType.SINGLE, 1.5: Chem.BondType.AROMATIC, 2.0: Chem.BondType.DOUBLE,
                  3.0: Chem.BondType.TRIPLE}
    positions_angstrom = np.asarray(record.positions[frame], np.float64) * 10.0
    molecules = []
    for m in range(record.num_molecules):
        atoms = np.flatnonzero(molecule == m)
        first = int(atoms[0])
        editable = Chem.RWMol()
        for a in atoms:
            atom = Chem.Atom(int(record.atomic_numbers[a]))
            atom.SetFormalCharge(int(record.formal_charges[a]))
            atom.SetNoImplicit(True)
            editable.AddAtom(atom)
        for (a, b), order in zip(record.bonds, record.bond_orders):
            if molecule[a] == m:
                bond = bond_types[float(order)]
                editable.AddBond(int(a) - first, int(b) - first, bond)
                if bond == Chem.BondType.AROMATIC:
                    editable.GetBondBetweenAtoms(int(a) - first, int(b) - first).SetIsAromatic(True)
                    editable.GetAtomWithIdx(int(a) - first).SetIsAromatic(True)
                    editable.GetAtomWithIdx(int(b) - first).SetIsAromatic(True)
        conformer = Chem.Conformer(len(atoms))
        for k, a in enumerate(atoms):
            conformer.SetAtomPosition(k, Geometry.Point3D(*positions_angstrom[a]))
        mol = editable.GetMol()
        mol.AddConformer(conformer, assignId=True)
        Chem.SanitizeMol(mol)
        molecules.append(mol)
    return molecules
