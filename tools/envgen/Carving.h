#ifndef OPENMM_MRL_ENVGEN_CARVING_H_
#define OPENMM_MRL_ENVGEN_CARVING_H_

// SPDX-License-Identifier: MIT
// The geometry of mrl-envgen carve: the molecular graph of a System, molecules made whole across the
// periodic box, and the molecules within a radius of a central set placed at their minimum image.

#include <vector>

#include "openmm/Vec3.h"

namespace OpenMM {
class System;
} // namespace OpenMM

namespace MRLPlugin {

/// The molecules of a System and the links between its particles.
struct Topology {
    int numParticles = 0;
    std::vector<std::vector<int>> molecules; ///< sorted atom lists, sorted by first atom
    std::vector<int> moleculeOf;
    std::vector<std::vector<int>> neighbors;    ///< bonds, constraints and virtual-site links (for making whole)
    std::vector<std::vector<int>> bondPartners; ///< chemical bonds only (stored in records)
};

/// The topology of `system` with the molecules that its Context found (Context::getMolecules()).
/// Bonds: HarmonicBondForce and CustomBondForce bonds and constraints, except a constraint that only
/// fixes an angle (between a hydrogen and an atom bonded to a common neighbor, e.g. H-H in rigid water).
Topology findTopology(const OpenMM::System& system, std::vector<std::vector<int>> molecules,
                      const std::vector<int>& elements);

/// Buffers reused from frame to frame.
struct CarveScratch {
    explicit CarveScratch(const Topology& topology);
    std::vector<OpenMM::Vec3> whole;   ///< the frame's positions, molecules whole (nm)
    std::vector<OpenMM::Vec3> shifted; ///< the carved positions of the current environment's atoms (nm)
    std::vector<char> placed;
    std::vector<int> queue;
    std::vector<int> localIndex;   ///< -1, or an atom's index in the record being written
    std::vector<int> moleculeMark; ///< the central set whose environment took a molecule, or -1
};

/// OpenMM's minimum image for a box in reduced form; `box` null when not periodic.
OpenMM::Vec3 minimumImage(OpenMM::Vec3 d, const OpenMM::Vec3* box);

/// Makes every molecule whole into `scratch.whole`: each atom at the minimum image of the atom it was reached
/// from (breadth first over `neighbors`, from the molecule's first atom, which keeps its position).  Atoms that
/// the graph does not reach (linked only through other kinds of forces) go to the minimum image of the root.
void makeWhole(const Topology& topology, const std::vector<OpenMM::Vec3>& raw, const OpenMM::Vec3* box,
               CarveScratch& scratch);

/// The molecules of one environment, their positions in `scratch.shifted`.
struct CarvedEnvironment {
    std::vector<int> order; ///< the central molecules (the one of the first central atom leads), then the others
    size_t numCentral = 0;  ///< how many of `order` are central
};

/// The environment of the central atoms `central` (central set number `set`) in the frame made whole in
/// `scratch`: every molecule with an atom within `radiusNm` of a central atom, each shifted as a unit to the
/// lattice image of its closest pair with the placed central atoms.
CarvedEnvironment carveEnvironment(const Topology& topology, const OpenMM::Vec3* box, const std::vector<int>& central,
                                   int set, double radiusNm, CarveScratch& scratch);

} // namespace MRLPlugin

#endif
