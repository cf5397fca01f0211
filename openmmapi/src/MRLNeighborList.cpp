// SPDX-License-Identifier: MIT
#include "internal/MRLNeighborList.h"
#include "openmm/OpenMMException.h"
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

using namespace MRLPlugin;
using namespace OpenMM;

MRLNeighborList::MRLNeighborList(double cutoff, double skin) : cutoff(cutoff), skin(skin), effectiveSkin(skin) {
    if (!(cutoff > 0.0))
        throw OpenMMException("MRLForce: the neighbor-list cutoff must be positive (got " + std::to_string(cutoff) +
                              " nm).");
    if (!(skin >= 0.0))
        throw OpenMMException("MRLForce: the neighbor-list skin must not be negative (got " + std::to_string(skin) +
                              " nm).");
}

bool MRLNeighborList::needsRebuild(const double* positions, int n, const Vec3* box) const {
    if (!built || static_cast<int>(lastPositions.size()) != 3 * n || periodic != (box != nullptr))
        return true;
    if (box != nullptr)
        for (int d = 0; d < 3; d++)
            if (box[d] != lastBox[d])
                return true;
    double limit = 0.25 * effectiveSkin * effectiveSkin;
    for (int i = 0; i < 3 * n; i += 3) {
        double dx = positions[i] - lastPositions[i], dy = positions[i + 1] - lastPositions[i + 1],
               dz = positions[i + 2] - lastPositions[i + 2];
        if (dx * dx + dy * dy + dz * dz > limit)
            return true;
    }
    return false;
}

bool MRLNeighborList::update(const double* positions, int n, const Vec3* box) {
    if (!needsRebuild(positions, n, box))
        return false;
    build(positions, n, box);
    return true;
}

// The height of the box along each reduced direction: the distance between the two faces that the
// other two vectors span.  A sphere of radius r spans at most r/height in that fractional coordinate.
static void boxHeights(const Vec3* box, double heights[3]) {
    double volume = std::abs(box[0].dot(box[1].cross(box[2])));
    heights[0] = volume / std::sqrt(box[1].cross(box[2]).dot(box[1].cross(box[2])));
    heights[1] = volume / std::sqrt(box[2].cross(box[0]).dot(box[2].cross(box[0])));
    heights[2] = volume / std::sqrt(box[0].cross(box[1]).dot(box[0].cross(box[1])));
}

double MRLNeighborList::getEffectiveSkin(const Vec3* box, double cutoff, double skin) {
    if (box == nullptr)
        return skin;
    if (!(box[0][1] == 0 && box[0][2] == 0 && box[1][2] == 0))
        throw OpenMMException(
            "MRLForce: the periodic box is not in OpenMM's reduced form (a along x, b in the xy plane).");
    double heights[3];
    boxHeights(box, heights);
    double minHeight = std::min(heights[0], std::min(heights[1], heights[2]));
    if (!(minHeight > 2 * cutoff))
        throw OpenMMException("MRLForce: the periodic box (smallest width " + std::to_string(minHeight) +
                              " nm) is smaller than twice the model's cutoff (" + std::to_string(cutoff) +
                              " nm). Use a larger box or a model with a shorter cutoff.");
    // Keep at most one periodic image of each pair within reach.
    return std::min(skin, 0.999 * (0.5 * minHeight - cutoff));
}

void MRLNeighborList::build(const double* positions, int n, const Vec3* box) {
    for (int i = 0; i < 3 * n; i++)
        if (!std::isfinite(positions[i]))
            throw OpenMMException("MRLForce: particle positions are not finite (NaN or infinity); the "
                                  "simulation has become unstable. Use a smaller time step or minimize first.");
    periodic = (box != nullptr);
    effectiveSkin = skin;
    int numCells[3];
    double origin[3] = {0, 0, 0}, cellWidth[3] = {1, 1, 1};
    wrapped.resize(3 * n);
    imageOfAtom.assign(3 * n, 0);
    if (periodic) {
        double heights[3];
        boxHeights(box, heights);
        effectiveSkin = getEffectiveSkin(box, cutoff, skin);
        double reach = cutoff + effectiveSkin;
        for (int d = 0; d < 3; d++)
            numCells[d] = std::max(1, static_cast<int>(std::floor(heights[d] / reach)));
        // Fractional coordinates in the reduced form: s_c = z/c_z, s_b = (y - c_y s_c)/b_y, s_a = (x - b_x s_b - c_x
        // s_c)/a_x.
        for (int i = 0; i < n; i++) {
            const double* r = positions + 3 * i;
            double sc = r[2] / box[2][2];
            double sb = (r[1] - box[2][1] * sc) / box[1][1];
            double sa = (r[0] - box[1][0] * sb - box[2][0] * sc) / box[0][0];
            double s[3] = {sa, sb, sc};
            for (int d = 0; d < 3; d++) {
                double image = std::floor(s[d]);
                s[d] -= image;
                if (s[d] >= 1.0) // rounding at the upper edge
                    s[d] = 0.0, image += 1;
                imageOfAtom[3 * i + d] = static_cast<int>(image);
                wrapped[3 * i + d] = s[d];
            }
        }
    } else {
        double lower[3] = {0, 0, 0}, upper[3] = {0, 0, 0};
        for (int d = 0; d < 3; d++) {
            lower[d] = n > 0 ? positions[d] : 0.0;
            upper[d] = lower[d];
        }
        for (int i = 0; i < n; i++)
            for (int d = 0; d < 3; d++) {
                double x = positions[3 * i + d];
                lower[d] = std::min(lower[d], x);
                upper[d] = std::max(upper[d], x);
            }
        // Atoms flung far apart must not overflow the cell count: count in double, clamp, and widen
        // the cells so that they still cover the extent (each at least one reach wide).
        double reach = cutoff + effectiveSkin;
        double maxPerAxis = 8.0 * n + 27.0;
        for (int d = 0; d < 3; d++) {
            origin[d] = lower[d];
            double extent = upper[d] - lower[d];
            numCells[d] = static_cast<int>(std::min(maxPerAxis, std::floor(extent / reach) + 1.0));
            cellWidth[d] = std::max(reach, extent / numCells[d]);
        }
        for (int i = 0; i < 3 * n; i++)
            wrapped[i] = positions[i];
    }
    // Keep the number of cells proportional to the number of atoms (sparse systems in big boxes).
    long long maxCells = 8LL * n + 27;
    while (static_cast<long long>(numCells[0]) * numCells[1] * numCells[2] > maxCells) {
        int largest = static_cast<int>(std::max_element(numCells, numCells + 3) - numCells);
        if (!periodic)
            cellWidth[largest] *= 2;
        numCells[largest] = periodic ? std::max(1, numCells[largest] / 2) : std::max(1, (numCells[largest] + 1) / 2);
    }
    auto cellCoordinate = [&](int atom, int d) {
        double s = periodic ? wrapped[3 * atom + d] * numCells[d] : (wrapped[3 * atom + d] - origin[d]) / cellWidth[d];
        return std::min(numCells[d] - 1, std::max(0, static_cast<int>(s)));
    };
    // Counting sort of atoms into cells.
    int totalCells = numCells[0] * numCells[1] * numCells[2];
    cellOfAtom.resize(n);
    cellStart.assign(totalCells + 1, 0);
    for (int i = 0; i < n; i++) {
        int c = (cellCoordinate(i, 0) * numCells[1] + cellCoordinate(i, 1)) * numCells[2] + cellCoordinate(i, 2);
        cellOfAtom[i] = c;
        cellStart[c + 1]++;
    }
    std::partial_sum(cellStart.begin(), cellStart.end(), cellStart.begin());
    cellAtoms.resize(n);
    {
        std::vector<int> fill(cellStart.begin(), cellStart.end() - 1);
        for (int i = 0; i < n; i++)
            cellAtoms[fill[cellOfAtom[i]]++] = i;
    }
    // For each atom, search the 27 neighboring cells (wrapping periodically, each wrap being an image).
    double reach2 = (cutoff + effectiveSkin) * (cutoff + effectiveSkin);
    sources.clear();
    targets.clear();
    shifts.clear();
    std::vector<std::pair<int, int>> found; // (j, index into candidateShifts)
    std::vector<Vec3> candidateShifts;
    for (int i = 0; i < n; i++) {
        int ci[3] = {cellOfAtom[i] / (numCells[1] * numCells[2]), (cellOfAtom[i] / numCells[2]) % numCells[1],
                     cellOfAtom[i] % numCells[2]};
        Vec3 ri(positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]);
        found.clear();
        candidateShifts.clear();
        int lo[3], hi[3];
        for (int d = 0; d < 3; d++) {
            lo[d] = ci[d] - 1;
            hi[d] = ci[d] + 1;
            if (!periodic) {
                lo[d] = std::max(lo[d], 0);
                hi[d] = std::min(hi[d], numCells[d] - 1);
            }
        }
        for (int ka = lo[0]; ka <= hi[0]; ka++)
            for (int kb = lo[1]; kb <= hi[1]; kb++)
                for (int kc = lo[2]; kc <= hi[2]; kc++) {
                    int k[3] = {ka, kb, kc}, wrappedCell[3], image[3] = {0, 0, 0};
                    for (int d = 0; d < 3; d++) {
                        wrappedCell[d] = k[d];
                        if (periodic) {
                            wrappedCell[d] = ((k[d] % numCells[d]) + numCells[d]) % numCells[d];
                            image[d] = (k[d] - wrappedCell[d]) / numCells[d];
                        }
                    }
                    int cell = (wrappedCell[0] * numCells[1] + wrappedCell[1]) * numCells[2] + wrappedCell[2];
                    for (int slot = cellStart[cell]; slot < cellStart[cell + 1]; slot++) {
                        int j = cellAtoms[slot];
                        Vec3 shift;
                        if (periodic) {
                            // r_ij = pos_j - pos_i + (m_i - m_j + image) . box
                            int m[3];
                            for (int d = 0; d < 3; d++)
                                m[d] = imageOfAtom[3 * i + d] - imageOfAtom[3 * j + d] + image[d];
                            if (j == i && m[0] == 0 && m[1] == 0 && m[2] == 0)
                                continue;
                            shift = box[0] * m[0] + box[1] * m[1] + box[2] * m[2];
                        } else if (j == i)
                            continue;
                        Vec3 rj(positions[3 * j], positions[3 * j + 1], positions[3 * j + 2]);
                        Vec3 delta = rj - ri + shift;
                        if (delta.dot(delta) < reach2) {
                            found.emplace_back(j, static_cast<int>(candidateShifts.size()));
                            candidateShifts.push_back(shift);
                        }
                    }
                }
        std::sort(found.begin(), found.end());
        for (const auto& [j, s] : found) {
            sources.push_back(i);
            targets.push_back(j);
            for (int d = 0; d < 3; d++)
                shifts.push_back(candidateShifts[s][d]);
        }
    }
    int numEdges = static_cast<int>(sources.size());
    edgeIndex.resize(2 * numEdges);
    std::copy(sources.begin(), sources.end(), edgeIndex.begin());
    std::copy(targets.begin(), targets.end(), edgeIndex.begin() + numEdges);
    edgeShift = shifts;
    lastPositions.assign(positions, positions + 3 * n);
    if (periodic)
        for (int d = 0; d < 3; d++)
            lastBox[d] = box[d];
    built = true;
    numBuilds++;
}
