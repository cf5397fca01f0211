#ifndef OPENMM_MRL_ENVIRONMENT_H_
#define OPENMM_MRL_ENVIRONMENT_H_

// SPDX-License-Identifier: MIT
// 3D interaction environments (3DMRL): a central molecule with copies of a partner molecule placed
// around its non-ring heavy atoms at random orientations, here without clashes, parametrized with
// MMFF94 (MMFFSystem.h) and sampled with OpenMM MD.  Lengths in nm, energies in kJ/mol.

#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "openmm/Vec3.h"

namespace RDKit {
class ROMol;
class RWMol;
} // namespace RDKit

namespace MRLPlugin {

/// An input that cannot give a record (invalid SMILES, typing failure, clashes, ...): the run records
/// it as skipped with this message and goes on.
class SkipInput : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The kind of a skip reason, for summaries: "invalid SMILES", "MMFF94 typing", "embedding", "placement",
/// "minimization", "exploding trajectory" or "other".
std::string skipCategory(const std::string& reason);

/// A molecule ready for placement: hydrogens added, `numConformers` ETKDG conformers relaxed with MMFF94.
struct PreparedMolecule {
    std::shared_ptr<RDKit::RWMol> mol;       ///< with explicit hydrogens and its conformers (RDKit's Å)
    std::vector<std::string> fragmentSmiles; ///< canonical SMILES of each fragment (usually one)
    int numHeavyAtoms = 0;
};

/// Parses `smiles`, adds hydrogens, embeds conformers with ETKDGv3 (seeded) and relaxes them with MMFF94.
/// Throws SkipInput naming the problem (invalid SMILES, embedding failure, MMFF94 typing failure).
PreparedMolecule prepareMolecule(const std::string& smiles, int numConformers, std::uint64_t seed);

/// How partner copies are placed.
struct PlacementOptions {
    int copies = 5;                      ///< partner copies
    double minDistanceNm = 0.25;         ///< minimum distance between heavy atoms of different molecules
    double minHydrogenDistanceNm = 0.15; ///< minimum distance of any other pair of atoms of different molecules
    bool periodic = false; ///< place in a periodic cubic box (copies beyond one per anchor go anywhere in it)
    double boxNm = 0.0;    ///< periodic box edge (nm); 0: the smallest box that fits the cluster and 2 cutoffs
    double cutoffNm = 0.9; ///< periodic only: used to size the automatic box
    int maxAttempts = 500; ///< placement attempts per copy before the input is skipped
};

/// A placed environment: one RDKit molecule holding the central molecule and the copies as fragments.
struct Environment {
    std::shared_ptr<RDKit::RWMol> mol; ///< all molecules, central first; no conformer needed
    std::vector<OpenMM::Vec3> positionsNm;
    std::vector<int> moleculeIndex;         ///< per atom: fragment index (RDKit getMolFrags order)
    std::vector<int> anchor;                ///< per atom: central atom its copy was placed around, or -1
    std::vector<std::string> smiles, names; ///< per molecule
    std::vector<int> isCentral;             ///< per molecule
    bool periodic = false;
    double boxNm = 0.0;    ///< cubic box edge when periodic
    OpenMM::Vec3 centerNm; ///< centroid of the initial cluster (restraint center)
    double radiusNm = 0.0; ///< largest distance of an atom from centerNm
};

/// Places `copies` rotated copies of `partner` (conformer `partnerConformer`) around the non-ring heavy atoms
/// of `central` (conformer `centralConformer`; all heavy atoms when every one is in a ring), without clashes.
/// Throws SkipInput when a copy cannot be placed.
Environment placeEnvironment(const PreparedMolecule& central, int centralConformer, const PreparedMolecule& partner,
                             int partnerConformer, const PlacementOptions& options, std::mt19937_64& random);

/// 3DMRL's direction targets for one frame: for an atom of a partner copy, the unit vector from its anchor atom
/// to the copy's centroid; zero for central atoms.  `positionsNm` as in the environment; 3 values per atom.
std::vector<float> directionTargets(const Environment& environment, const std::vector<OpenMM::Vec3>& positionsNm);

/// A 64-bit seed derived from a run's seed and a record key (splitmix64 over the key's bytes).
std::uint64_t deriveSeed(std::uint64_t seed, const std::string& key);

} // namespace MRLPlugin

#endif
