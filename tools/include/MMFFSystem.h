#ifndef OPENMM_MRL_MMFFSYSTEM_H_
#define OPENMM_MRL_MMFFSYSTEM_H_

// SPDX-License-Identifier: MIT
// RDKit's MMFF94 / MMFF94s translated into an OpenMM System.
//
// Every term is taken from RDKit's own typer and parameter accessors (RDKit::MMFF::MMFFMolProperties)
// and enumerated the way RDKit's MMFF Builder enumerates it, so that without a cutoff the System's
// energy and forces are those of RDKit::MMFF::constructForceField(mol, props, 100.0, -1,
// ignoreInterfragInteractions = false) (RDKit's 100 Å non-bonded threshold aside: here every pair is
// included).  Units are OpenMM's: nm, kJ/mol (MMFF's kcal/mol and Å are converted with 4.184 and 10).
//
// The forces of the System, each named (Force::getName()), with MMFF's energy (kcal/mol, Å, degrees):
//   group 0, intramolecular:
//     "MMFF94 bond stretch"        CustomBondForce          143.9325/2 kb dr² (1 - 2 dr + 7/12 (2 dr)²)
//     "MMFF94 angle bend"          CustomAngleForce         0.043844/2 ka dθ² (1 - 0.006981317 dθ)
//     "MMFF94 linear angle bend"   CustomAngleForce         143.9325 ka (1 + cos θ), central atom with MMFF `linh`
//     "MMFF94 stretch-bend"        CustomCompoundBondForce  2.51210 (kijk dr_ij + kkji dr_kj) dθ
//     "MMFF94 out-of-plane bend"   CustomCompoundBondForce  0.043844/2 koop χ², χ the Wilson angle
//     "MMFF94 torsion"             PeriodicTorsionForce     V1/2 (1 + cos φ) + V2/2 (1 - cos 2φ) + V3/2 (1 + cos 3φ)
//     "MMFF94 intramolecular vdW"  CustomBondForce          buffered 14-7, ε (1.07 R*/(r + 0.07 R*))^7
//                                                           (1.12 R*^7/(r^7 + 0.12 R*^7) - 2), for every pair of
//                                                           one molecule that is neither 1-2 nor 1-3
//     "MMFF94 intramolecular electrostatics"  CustomBondForce  332.0716 qi qj / (D (r + 0.05)), × 0.75 for 1-4 pairs
//   group 1, intermolecular (only when the molecule holds two fragments or more):
//     "MMFF94 intermolecular nonbonded"  CustomNonbondedForce  buffered 14-7 + buffered Coulomb between atoms of
//         different molecules (every intramolecular pair is an exclusion); R* and ε come from Discrete2DFunctions
//         over the MMFF atom types present (RDKit's combined and donor-acceptor-scaled values depend on the types
//         only).
// A force that would hold no term is not added.
//
// The out-of-plane angle is written with angle() and dihedral() (sin χ = sin∠IJL · sin φ(K,J,I,L), which is
// RDKit's calcOopChi up to the sign of χ, and the energy is even in χ), so that it also follows periodic
// boundary conditions.
//
// Periodic option (MMFFOptions::periodic): every force uses periodic boundary conditions (bonded terms and
// intramolecular pairs by the minimum image, never cut off); the intermolecular force uses CutoffPeriodic with
// cutoff `cutoffNm` and OpenMM's switching function over [cutoffNm - switchWidthNm, cutoffNm], which acts on the
// whole pair energy:
//   vdW: the buffered 14-7, switched off smoothly;
//   electrostatics: the buffered Coulomb shifted to zero at the cutoff, k qi qj (1/(r + δ) - 1/(rc + δ)), and
//   switched off by the same function, so energy and forces are continuous.  Inside the switching distance the
//   shift only adds a constant per pair, which sums to zero between two neutral molecules all of whose atom pairs
//   lie within the switching distance: for such clusters the energy equals the no-cutoff energy.
// No long-range correction is applied.  The caller sets the periodic box (System::setDefaultPeriodicBoxVectors or
// Context::setPeriodicBoxVectors); each molecule must be smaller than half the box.

#include <string>
#include <vector>

namespace OpenMM {
class System;
}
namespace RDKit {
class ROMol;
}

namespace MRLPlugin {

/// Options of createMMFFSystem.
struct MMFFOptions {
    std::string variant = "MMFF94"; ///< "MMFF94" or "MMFF94s"
    bool periodic = false;          ///< false: no cutoff, every pair; true: CutoffPeriodic (see the file comment)
    double cutoffNm = 1.0;          ///< periodic only: the intermolecular nonbonded cutoff (nm)
    double switchWidthNm = 0.1;     ///< periodic only: pair energies are switched off over [cutoff - width, cutoff]
    double dielectric = 1.0;        ///< MMFF's constant dielectric D
};

/// Builds an OpenMM System (masses, forces) for `mol`, which must have explicit hydrogens and may hold
/// several fragments (molecules, e.g. RDKit::MolOps::combineMols of a central molecule and partner
/// copies). Fragment f (in RDKit::MolOps::getMolFrags order) is molecule f. Intramolecular terms
/// (all bonded terms + nonbonded pairs within one molecule) are in force group 0, intermolecular
/// nonbonded terms (vdW + electrostatics between different molecules) in force group 1, so
/// context.getState(..., groups = 1<<1) gives the interaction energy/forces.
/// Particle i is atom i of `mol`; masses are RDKit's (Atom::getMass, from its PeriodicTable).
/// `mol` is not modified (MMFF typing works on a copy) and needs no conformer: positions come from the Context.
/// `name` is used in error messages (e.g. the SMILES or the pair id).
/// Throws OpenMMException naming the molecule and the atom (index, element, and the problem) when MMFF94 cannot
/// type it, when hydrogens are implicit, or when an option is invalid.  The caller owns the returned System.
OpenMM::System* createMMFFSystem(const RDKit::ROMol& mol, const MMFFOptions& options, const std::string& name);

/// Builds the System of several molecules, each given as an MDL mol block with every hydrogen an atom (as RDKit's
/// MolToMolBlock writes a molecule after AddHs): the C++ side of the Python openmmmrl.createMMFFSystem.  Each block
/// is parsed by RDKit (sanitized, hydrogens kept) and must hold one molecule, i.e. one fragment; the molecules are
/// joined in order (RWMol::insertMol, as mrl-envgen joins an environment's molecules), so that molecule m of the
/// System (fragment m, force groups as above) is molBlocks[m] and particle i of molecule m follows the atoms of the
/// molecules before it.  The System is createMMFFSystem(joined molecule, options, ...).
/// `names[m]` names molecule m in error messages (e.g. "molecules[1] (CCO)"); every check of createMMFFSystem
/// (explicit hydrogens, MMFF94 typing) is made on each molecule alone, so an error names the molecule and the
/// atom's index within it.  Throws OpenMMException when a block cannot be read, holds no atom or several
/// fragments, fails a check, or when an option is invalid.  The caller owns the returned System.
OpenMM::System* createMMFFSystemFromMolBlocks(const std::vector<std::string>& molBlocks,
                                              const std::vector<std::string>& names, const MMFFOptions& options);

/// The fragment (molecule) index of every atom, as createMMFFSystem uses it (RDKit::MolOps::getMolFrags order).
std::vector<int> moleculeIndexOfAtoms(const RDKit::ROMol& mol);

} // namespace MRLPlugin

#endif
