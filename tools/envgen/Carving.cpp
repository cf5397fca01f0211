// SPDX-License-Identifier: MIT
#include "Carving.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "openmm/CustomBondForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/System.h"
#include "openmm/VirtualSite.h"

using OpenMM::Vec3;

namespace MRLPlugin {

namespace {

using Graph = std::vector<std::set<int>>;
using Lengths = std::map<std::pair<int, int>, double>;

struct Constraint {
    int i, j;
    double distance;
};

void addEdge(Graph& graph, int i, int j) {
    int n = static_cast<int>(graph.size());
    if (i != j && i >= 0 && j >= 0 && i < n && j < n) {
        graph[i].insert(j);
        graph[j].insert(i);
    }
}

/// The bonds of the HarmonicBondForces and CustomBondForces.
Graph forceBonds(const OpenMM::System& system) {
    Graph bonded(system.getNumParticles());
    for (int f = 0; f < system.getNumForces(); f++) {
        const OpenMM::Force& force = system.getForce(f);
        if (auto* bonds = dynamic_cast<const OpenMM::HarmonicBondForce*>(&force)) {
            for (int b = 0; b < bonds->getNumBonds(); b++) {
                int i, j;
                double length, k;
                bonds->getBondParameters(b, i, j, length, k);
                addEdge(bonded, i, j);
            }
        } else if (auto* custom = dynamic_cast<const OpenMM::CustomBondForce*>(&force)) {
            for (int b = 0; b < custom->getNumBonds(); b++) {
                int i, j;
                std::vector<double> parameters;
                custom->getBondParameters(b, i, j, parameters);
                addEdge(bonded, i, j);
            }
        }
    }
    return bonded;
}

/// The lengths of the harmonic bonds and of the constraints between atoms without a bond (a custom bond's
/// length is unknown: not listed), and the constraints.
std::vector<Constraint> lengthsAndConstraints(const OpenMM::System& system, const Graph& bonded, Lengths& lengths) {
    for (int f = 0; f < system.getNumForces(); f++)
        if (auto* bonds = dynamic_cast<const OpenMM::HarmonicBondForce*>(&system.getForce(f)))
            for (int b = 0; b < bonds->getNumBonds(); b++) {
                int i, j;
                double r0, k;
                bonds->getBondParameters(b, i, j, r0, k);
                lengths[{std::min(i, j), std::max(i, j)}] = r0;
            }
    std::vector<Constraint> constraints;
    for (int c = 0; c < system.getNumConstraints(); c++) {
        Constraint constraint;
        system.getConstraintParameters(c, constraint.i, constraint.j, constraint.distance);
        constraints.push_back(constraint);
        if (!bonded[constraint.i].count(constraint.j))
            lengths[{std::min(constraint.i, constraint.j), std::max(constraint.i, constraint.j)}] = constraint.distance;
    }
    return constraints;
}

/// A constraint that involves a hydrogen and is the longest side of a triangle of bonds/constraints
/// fixes an angle (H-H of rigid water, OpenMM's HAngles): it is no chemical bond.
bool fixesHydrogenAngle(const Constraint& c, const Graph& all, const Lengths& lengths,
                        const std::vector<int>& elements) {
    auto length = [&](int i, int j) {
        auto found = lengths.find({std::min(i, j), std::max(i, j)});
        return found == lengths.end() ? 0.0 : found->second;
    };
    bool hydrogen = elements[c.i] == 1 || elements[c.j] == 1;
    bool angle = false;
    for (int k : all[c.i])
        if (k != c.j && all[c.j].count(k) && c.distance > length(c.i, k) + 1e-6 && c.distance > length(c.j, k) + 1e-6)
            angle = true;
    return hydrogen && angle;
}

} // namespace

Topology findTopology(const OpenMM::System& system, std::vector<std::vector<int>> molecules,
                      const std::vector<int>& elements) {
    int n = system.getNumParticles();
    Topology topology;
    topology.numParticles = n;
    topology.molecules = std::move(molecules);
    for (std::vector<int>& molecule : topology.molecules)
        std::sort(molecule.begin(), molecule.end());
    std::sort(topology.molecules.begin(), topology.molecules.end());
    topology.moleculeOf.assign(n, -1);
    for (size_t m = 0; m < topology.molecules.size(); m++)
        for (int i : topology.molecules[m])
            topology.moleculeOf[i] = static_cast<int>(m);

    Graph bonded = forceBonds(system);
    Lengths lengths;
    std::vector<Constraint> constraints = lengthsAndConstraints(system, bonded, lengths);
    Graph all = bonded;
    for (const Constraint& c : constraints)
        addEdge(all, c.i, c.j);
    for (const Constraint& c : constraints)
        if (!bonded[c.i].count(c.j) && !fixesHydrogenAngle(c, all, lengths, elements))
            addEdge(bonded, c.i, c.j);
    Graph linked = all;
    for (int i = 0; i < n; i++)
        if (system.isVirtualSite(i)) {
            const OpenMM::VirtualSite& site = system.getVirtualSite(i);
            for (int p = 0; p < site.getNumParticles(); p++)
                addEdge(linked, i, site.getParticle(p));
        }
    topology.neighbors.assign(n, {});
    topology.bondPartners.assign(n, {});
    for (int i = 0; i < n; i++) {
        topology.neighbors[i].assign(linked[i].begin(), linked[i].end());
        topology.bondPartners[i].assign(bonded[i].begin(), bonded[i].end());
    }
    return topology;
}

CarveScratch::CarveScratch(const Topology& topology)
    : shifted(topology.numParticles), localIndex(topology.numParticles, -1),
      moleculeMark(topology.molecules.size(), -1) {
}

Vec3 minimumImage(Vec3 d, const Vec3* box) {
    if (box != nullptr) {
        d -= box[2] * std::round(d[2] / box[2][2]);
        d -= box[1] * std::round(d[1] / box[1][1]);
        d -= box[0] * std::round(d[0] / box[0][0]);
    }
    return d;
}

void makeWhole(const Topology& topology, const std::vector<Vec3>& raw, const Vec3* box, CarveScratch& scratch) {
    std::vector<Vec3>& whole = scratch.whole;
    std::vector<char>& placed = scratch.placed;
    std::vector<int>& queue = scratch.queue;
    whole = raw;
    if (box == nullptr)
        return;
    placed.assign(raw.size(), 0);
    for (const std::vector<int>& molecule : topology.molecules) {
        int root = molecule[0];
        placed[root] = 1;
        queue.assign(1, root);
        for (size_t q = 0; q < queue.size(); q++) {
            int i = queue[q];
            for (int j : topology.neighbors[i])
                if (!placed[j]) {
                    placed[j] = 1;
                    whole[j] = whole[i] + minimumImage(raw[j] - whole[i], box);
                    queue.push_back(j);
                }
        }
        for (int j : molecule)
            if (!placed[j]) {
                placed[j] = 1;
                whole[j] = whole[root] + minimumImage(raw[j] - whole[root], box);
            }
    }
}

namespace {

double norm(const Vec3& v) {
    return std::sqrt(v.dot(v));
}

/// The closest pair (an atom of molecule m, a placed central atom), skipping atoms farther than `limit` from
/// the first central atom: its distance, and in `shift` the lattice shift that brings m there.
double closestPair(const Topology& topology, const std::vector<Vec3>& whole, const std::vector<Vec3>& placedCentral,
                   int m, double limit, const Vec3* box, Vec3& shift) {
    double best = std::numeric_limits<double>::infinity();
    for (int i : topology.molecules[m]) {
        if (norm(minimumImage(whole[i] - placedCentral[0], box)) > limit)
            continue;
        for (const Vec3& p : placedCentral) {
            Vec3 d = whole[i] - p, image = minimumImage(d, box);
            double distance = norm(image);
            if (distance < best) {
                best = distance;
                shift = image - d;
            }
        }
    }
    return best;
}

} // namespace

CarvedEnvironment carveEnvironment(const Topology& topology, const Vec3* box, const std::vector<int>& central, int set,
                                   double radiusNm, CarveScratch& scratch) {
    CarvedEnvironment environment;
    std::vector<Vec3> placedCentral;
    auto place = [&](int m, const Vec3& shift) {
        for (int i : topology.molecules[m])
            scratch.shifted[i] = scratch.whole[i] + shift;
        scratch.moleculeMark[m] = set;
        environment.order.push_back(m);
    };
    // Central molecules first (the one of the first central atom leads), each shifted as a unit.
    int leading = topology.moleculeOf[central[0]];
    place(leading, Vec3());
    std::set<int> centralAtoms(central.begin(), central.end());
    std::set<int> centralMolecules;
    for (int i : central)
        centralMolecules.insert(topology.moleculeOf[i]);
    for (int i : central)
        if (topology.moleculeOf[i] == leading)
            placedCentral.push_back(scratch.shifted[i]);
    for (int m : centralMolecules) {
        if (m == leading)
            continue;
        Vec3 shift;
        closestPair(topology, scratch.whole, placedCentral, m, std::numeric_limits<double>::infinity(), box, shift);
        place(m, shift);
        for (int i : topology.molecules[m])
            if (centralAtoms.count(i))
                placedCentral.push_back(scratch.shifted[i]);
    }
    environment.numCentral = centralMolecules.size();
    double extent = 0;
    for (const Vec3& p : placedCentral)
        extent = std::max(extent, norm(p - placedCentral[0]));
    for (size_t m = 0; m < topology.molecules.size(); m++) {
        if (scratch.moleculeMark[m] == set)
            continue;
        Vec3 shift;
        if (closestPair(topology, scratch.whole, placedCentral, static_cast<int>(m), extent + radiusNm + 1e-9, box,
                        shift) <= radiusNm)
            place(static_cast<int>(m), shift);
    }
    std::sort(environment.order.begin() + static_cast<long>(environment.numCentral), environment.order.end());
    return environment;
}

} // namespace MRLPlugin
