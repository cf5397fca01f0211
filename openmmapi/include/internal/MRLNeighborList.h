// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLNEIGHBORLIST_H_
#define OPENMM_MRLNEIGHBORLIST_H_

#include "internal/windowsExportMRL.h"
#include "openmm/Vec3.h"
#include <cstdint>
#include <vector>

namespace MRLPlugin {

/**
 * The engine-side neighbor list of "graph/1" models: a cell list in fractional coordinates, so that
 * rectangular and triclinic periodic boxes (OpenMM's reduced form) and open boundaries are all handled
 * by the same code.  Edges are directed pairs (i, j), i != j, in both directions, with
 * |r_j - r_i + shift| < cutoff + skin, grouped by i and sorted by j.  update() rebuilds the list only
 * when an atom has moved more than half the skin since the last build, or the box has changed.
 */
class OPENMM_EXPORT_MRL MRLNeighborList {
public:
    /**
     * @param cutoff  the interaction cutoff, measured in nm
     * @param skin    the extra distance kept in the list, measured in nm
     */
    MRLNeighborList(double cutoff, double skin);
    /**
     * Bring the list up to date.
     *
     * @param positions  3*n coordinates (x0, y0, z0, x1, ...), measured in nm
     * @param n          the number of atoms
     * @param box        the three periodic box vectors in OpenMM's reduced form, or nullptr for no periodicity
     * @return true if the list was rebuilt
     */
    bool update(const double* positions, int n, const OpenMM::Vec3* box);
    int getNumEdges() const { return static_cast<int>(edgeShift.size() / 3); }
    /** The edges as a [2, E] row-major array: E source indices, then E target indices. */
    const std::vector<int64_t>& getEdgeIndex() const { return edgeIndex; }
    /** The periodic image offset of each edge, [E, 3] row-major, measured in nm. */
    const std::vector<double>& getEdgeShift() const { return edgeShift; }
    /** The skin actually used by the last build (smaller than requested if the box is small), in nm. */
    double getEffectiveSkin() const { return effectiveSkin; }
    /**
     * The skin a list may use in a periodic box: the requested one, or less where the box is small, so that
     * at most one periodic image of each pair is within cutoff + skin.  Throws if the box is not in OpenMM's
     * reduced form or is narrower than twice the cutoff.
     *
     * @param box     the three periodic box vectors, or nullptr for no periodicity (the skin is returned)
     * @param cutoff  the interaction cutoff, nm
     * @param skin    the requested skin, nm
     */
    static double getEffectiveSkin(const OpenMM::Vec3* box, double cutoff, double skin);
    /** The number of builds so far. */
    int getNumBuilds() const { return numBuilds; }

private:
    bool needsRebuild(const double* positions, int n, const OpenMM::Vec3* box) const;
    void build(const double* positions, int n, const OpenMM::Vec3* box);
    double cutoff, skin, effectiveSkin;
    bool built = false;
    int numBuilds = 0;
    bool periodic = false;
    OpenMM::Vec3 lastBox[3];
    std::vector<double> lastPositions;
    std::vector<int64_t> edgeIndex;
    std::vector<double> edgeShift;
    // Work arrays reused between builds.
    std::vector<int> cellOfAtom, cellStart, cellAtoms, imageOfAtom;
    std::vector<double> wrapped;
    std::vector<int> sources, targets;
    std::vector<double> shifts;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLNEIGHBORLIST_H_
