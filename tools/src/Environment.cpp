// SPDX-License-Identifier: MIT
#include "MRLEnvironment.h"

// RDKit's MMFF headers need these first.
#include <GraphMol/GraphMol.h>
#include <sstream>

#include <GraphMol/DistGeomHelpers/Embedder.h>
#include <GraphMol/ForceFieldHelpers/MMFF/MMFF.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <RDGeneral/RDLog.h>

#include <algorithm>
#include <cmath>

#include "MMFFSystem.h"
#include "openmm/OpenMMException.h"
#include "openmm/System.h"

using OpenMM::Vec3;

namespace MRLPlugin {

namespace {

/// RDKit logs parse errors on its own; the reasons go into the dataset's skip list instead.
void quietRDKit() {
    static bool done = false;
    if (!done) {
        RDLog::InitLogs();
        boost::logging::disable_logs("rdApp.*");
        done = true;
    }
}

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Vec3 randomUnitVector(std::mt19937_64& random) {
    std::normal_distribution<double> normal(0.0, 1.0);
    while (true) {
        Vec3 v(normal(random), normal(random), normal(random));
        double norm = std::sqrt(v.dot(v));
        if (norm > 1e-6)
            return v / norm;
    }
}

/// A uniformly random rotation matrix (from a uniformly random unit quaternion).
std::array<Vec3, 3> randomRotation(std::mt19937_64& random) {
    std::normal_distribution<double> normal(0.0, 1.0);
    double q[4], norm = 0;
    do {
        norm = 0;
        for (double& x : q) {
            x = normal(random);
            norm += x * x;
        }
    } while (norm < 1e-12);
    norm = std::sqrt(norm);
    double w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
    return {Vec3(1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            Vec3(2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            Vec3(2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))};
}

std::vector<Vec3> conformerPositionsNm(const RDKit::ROMol& mol, int conformer) {
    const RDKit::Conformer& conf = mol.getConformer(conformer);
    std::vector<Vec3> positions;
    for (unsigned i = 0; i < mol.getNumAtoms(); i++) {
        const RDGeom::Point3D& p = conf.getAtomPos(i);
        positions.emplace_back(0.1 * p.x, 0.1 * p.y, 0.1 * p.z);
    }
    return positions;
}

Vec3 centroid(const std::vector<Vec3>& positions) {
    Vec3 sum;
    for (const Vec3& p : positions)
        sum += p;
    return sum / static_cast<double>(positions.size());
}

/// A conformer's positions (nm) with its centroid at the origin, and the largest distance from it.
std::vector<Vec3> centeredConformerNm(const RDKit::ROMol& mol, int conformer, double& radiusNm) {
    std::vector<Vec3> positions = conformerPositionsNm(mol, mol.getConformer(conformer).getId());
    Vec3 center = centroid(positions);
    radiusNm = 0;
    for (Vec3& p : positions) {
        p -= center;
        radiusNm = std::max(radiusNm, std::sqrt(p.dot(p)));
    }
    return positions;
}

Vec3 minimumImage(Vec3 d, bool periodic, double box) {
    if (periodic)
        for (int k = 0; k < 3; k++)
            d[k] -= box * std::round(d[k] / box);
    return d;
}

} // namespace

std::string skipCategory(const std::string& reason) {
    const std::pair<const char*, const char*> kinds[] = {
        {"invalid SMILES", "invalid SMILES"}, {"cannot type", "MMFF94 typing"},
        {"hydrogens", "MMFF94 typing"},       {"ETKDG", "embedding"},
        {"MMFF94 relaxation", "embedding"},   {"could not place", "placement"},
        {"minimization", "minimization"},     {"exploding", "exploding trajectory"}};
    for (const auto& [text, kind] : kinds)
        if (reason.find(text) != std::string::npos)
            return kind;
    return "other";
}

std::uint64_t deriveSeed(std::uint64_t seed, const std::string& key) {
    std::uint64_t state = seed;
    std::uint64_t value = splitmix64(state);
    for (unsigned char c : key) {
        state ^= c + (value << 6);
        value = splitmix64(state);
    }
    return value;
}

PreparedMolecule prepareMolecule(const std::string& smiles, int numConformers, std::uint64_t seed) {
    quietRDKit();
    std::unique_ptr<RDKit::RWMol> mol;
    try {
        mol.reset(RDKit::SmilesToMol(smiles));
    } catch (const std::exception& e) {
        throw SkipInput("invalid SMILES \"" + smiles + "\": " + e.what());
    }
    if (!mol || mol->getNumAtoms() == 0)
        throw SkipInput("invalid SMILES \"" + smiles + "\": RDKit cannot parse or sanitize it");
    PreparedMolecule prepared;
    for (const auto& fragment : RDKit::MolOps::getMolFrags(*mol))
        prepared.fragmentSmiles.push_back(RDKit::MolToSmiles(*fragment));
    for (const RDKit::Atom* atom : mol->atoms())
        prepared.numHeavyAtoms += atom->getAtomicNum() > 1 ? 1 : 0;
    RDKit::MolOps::addHs(*mol);

    // MMFF94 must be able to type every atom; its error names the atom.
    try {
        std::unique_ptr<OpenMM::System> check(createMMFFSystem(*mol, MMFFOptions(), smiles));
    } catch (const OpenMM::OpenMMException& e) {
        throw SkipInput(e.what());
    }

    RDKit::DGeomHelpers::EmbedParameters parameters = RDKit::DGeomHelpers::ETKDGv3;
    parameters.randomSeed = static_cast<int>(seed & 0x3fffffff);
    parameters.numThreads = 1;
    RDKit::INT_VECT ids = RDKit::DGeomHelpers::EmbedMultipleConfs(*mol, numConformers, parameters);
    if (ids.empty()) {
        parameters.useRandomCoords = true;
        ids = RDKit::DGeomHelpers::EmbedMultipleConfs(*mol, numConformers, parameters);
    }
    if (ids.empty())
        throw SkipInput("RDKit's ETKDG could not embed \"" + smiles + "\" in 3D");
    std::vector<std::pair<int, double>> results;
    RDKit::MMFF::MMFFOptimizeMoleculeConfs(*mol, results, 1, 2000);
    for (const auto& result : results)
        if (result.first < 0 || !std::isfinite(result.second))
            throw SkipInput("MMFF94 relaxation of a conformer of \"" + smiles + "\" failed");
    prepared.mol = std::move(mol);
    return prepared;
}

Environment placeEnvironment(const PreparedMolecule& central, int centralConformer, const PreparedMolecule& partner,
                             int partnerConformer, const PlacementOptions& options, std::mt19937_64& random) {
    const RDKit::ROMol& centralMol = *central.mol;
    const RDKit::ROMol& partnerMol = *partner.mol;
    centralConformer %= static_cast<int>(centralMol.getNumConformers());
    partnerConformer %= static_cast<int>(partnerMol.getNumConformers());
    Environment environment;
    environment.periodic = options.periodic;

    // The central molecule, centred at the origin (or the box centre), and the partner centred at the origin.
    double centralRadius = 0, partnerRadius = 0;
    std::vector<Vec3> centralPositions = centeredConformerNm(centralMol, centralConformer, centralRadius);
    std::vector<Vec3> partnerPositions = centeredConformerNm(partnerMol, partnerConformer, partnerRadius);
    double box = 0;
    if (options.periodic) {
        box = options.boxNm > 0 ? options.boxNm
                                : std::max(2 * options.cutoffNm + 0.2,
                                           2 * (centralRadius + 2 * partnerRadius + options.minDistanceNm) + 0.3);
        for (Vec3& p : centralPositions)
            p += Vec3(box / 2, box / 2, box / 2);
        if (centralRadius + options.minDistanceNm > box / 2)
            throw SkipInput("the periodic box (" + std::to_string(box) +
                            " nm) is too small for the central molecule; give a larger --box");
    }
    environment.boxNm = box;

    // Anchors: non-ring heavy atoms of the central molecule (all heavy atoms when each is in a ring).
    const RDKit::RingInfo* rings = centralMol.getRingInfo();
    std::vector<int> anchors, heavy;
    for (const RDKit::Atom* atom : centralMol.atoms())
        if (atom->getAtomicNum() > 1) {
            heavy.push_back(atom->getIdx());
            if (rings->numAtomRings(atom->getIdx()) == 0)
                anchors.push_back(atom->getIdx());
        }
    if (anchors.empty())
        anchors = heavy.empty() ? std::vector<int>{0} : heavy;
    std::shuffle(anchors.begin(), anchors.end(), random);

    std::vector<Vec3> placed = centralPositions;
    std::vector<bool> placedHeavy;
    for (const RDKit::Atom* atom : centralMol.atoms())
        placedHeavy.push_back(atom->getAtomicNum() > 1);
    std::vector<bool> partnerHeavy;
    for (const RDKit::Atom* atom : partnerMol.atoms())
        partnerHeavy.push_back(atom->getAtomicNum() > 1);
    environment.anchor.assign(centralMol.getNumAtoms(), -1);

    auto clashes = [&](const std::vector<Vec3>& candidate) {
        for (size_t i = 0; i < candidate.size(); i++)
            for (size_t j = 0; j < placed.size(); j++) {
                Vec3 d = minimumImage(candidate[i] - placed[j], options.periodic, box);
                double limit =
                    partnerHeavy[i] && placedHeavy[j] ? options.minDistanceNm : options.minHydrogenDistanceNm;
                if (d.dot(d) < limit * limit)
                    return true;
            }
        return false;
    };
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int copy = 0; copy < options.copies; copy++) {
        bool anchored = !options.periodic || copy < static_cast<int>(anchors.size());
        int anchor = anchors[copy % anchors.size()];
        Vec3 anchorPosition = centralPositions[anchor];
        Vec3 outward = anchorPosition - (options.periodic ? Vec3(box / 2, box / 2, box / 2) : Vec3());
        double outwardNorm = std::sqrt(outward.dot(outward));
        std::vector<Vec3> candidate(partnerPositions.size());
        bool done = false;
        for (int attempt = 0; attempt < options.maxAttempts && !done; attempt++) {
            std::array<Vec3, 3> rotation = randomRotation(random);
            std::vector<Vec3> rotated(partnerPositions.size());
            for (size_t i = 0; i < partnerPositions.size(); i++)
                rotated[i] = Vec3(rotation[0].dot(partnerPositions[i]), rotation[1].dot(partnerPositions[i]),
                                  rotation[2].dot(partnerPositions[i]));
            if (anchored) {
                // Slide the copy outwards from the anchor along a jittered direction until it touches nothing.
                Vec3 direction = outwardNorm > 1e-3 ? outward / outwardNorm : randomUnitVector(random);
                direction += randomUnitVector(random) * 0.6;
                direction /= std::sqrt(direction.dot(direction));
                for (double distance = options.minDistanceNm;
                     distance <= partnerRadius + 2 * options.minDistanceNm + 0.3; distance += 0.02) {
                    for (size_t i = 0; i < rotated.size(); i++)
                        candidate[i] = rotated[i] + anchorPosition + direction * distance;
                    if (!clashes(candidate)) {
                        done = true;
                        break;
                    }
                }
            } else {
                Vec3 center(box * uniform(random), box * uniform(random), box * uniform(random));
                for (size_t i = 0; i < rotated.size(); i++)
                    candidate[i] = rotated[i] + center;
                done = !clashes(candidate);
            }
        }
        if (!done)
            throw SkipInput("could not place partner copy " + std::to_string(copy + 1) + " of " +
                            std::to_string(options.copies) + " without clashes (minimum heavy-atom distance " +
                            std::to_string(options.minDistanceNm) + " nm) after " +
                            std::to_string(options.maxAttempts) +
                            " attempts; use fewer --copies, a smaller --min-distance" +
                            (options.periodic ? " or a larger --box" : ""));
        placed.insert(placed.end(), candidate.begin(), candidate.end());
        placedHeavy.insert(placedHeavy.end(), partnerHeavy.begin(), partnerHeavy.end());
        environment.anchor.insert(environment.anchor.end(), partnerPositions.size(), anchored ? anchor : -1);
    }

    // One RDKit molecule with every copy as a fragment (topology only; positions live in positionsNm).
    auto mol = std::make_shared<RDKit::RWMol>(centralMol);
    mol->clearConformers();
    RDKit::RWMol partnerTopology(partnerMol);
    partnerTopology.clearConformers();
    for (int copy = 0; copy < options.copies; copy++)
        mol->insertMol(partnerTopology);
    environment.mol = mol;
    environment.positionsNm = placed;
    environment.moleculeIndex = moleculeIndexOfAtoms(*mol);
    for (const std::string& smiles : central.fragmentSmiles) {
        environment.smiles.push_back(smiles);
        environment.names.push_back("central");
        environment.isCentral.push_back(1);
    }
    for (int copy = 0; copy < options.copies; copy++)
        for (const std::string& smiles : partner.fragmentSmiles) {
            environment.smiles.push_back(smiles);
            environment.names.push_back("partner");
            environment.isCentral.push_back(0);
        }
    int numMolecules = 1 + *std::max_element(environment.moleculeIndex.begin(), environment.moleculeIndex.end());
    if (numMolecules != static_cast<int>(environment.smiles.size()))
        throw OpenMM::OpenMMException("internal error: the environment has " + std::to_string(numMolecules) +
                                      " fragments but " + std::to_string(environment.smiles.size()) + " SMILES");
    environment.centerNm = centroid(placed);
    for (const Vec3& p : placed) {
        Vec3 d = minimumImage(p - environment.centerNm, options.periodic, box);
        environment.radiusNm = std::max(environment.radiusNm, std::sqrt(d.dot(d)));
    }
    return environment;
}

std::vector<float> directionTargets(const Environment& environment, const std::vector<Vec3>& positionsNm) {
    size_t numAtoms = positionsNm.size();
    int numMolecules = static_cast<int>(environment.smiles.size());
    std::vector<Vec3> sums(numMolecules);
    std::vector<int> counts(numMolecules, 0);
    // Copy centroids, each atom taken as the image nearest the molecule's first atom.
    std::vector<int> first(numMolecules, -1);
    for (size_t i = 0; i < numAtoms; i++) {
        int m = environment.moleculeIndex[i];
        if (first[m] < 0)
            first[m] = static_cast<int>(i);
        sums[m] += positionsNm[first[m]] +
                   minimumImage(positionsNm[i] - positionsNm[first[m]], environment.periodic, environment.boxNm);
        counts[m]++;
    }
    std::vector<float> directions(3 * numAtoms, 0.0f);
    for (size_t i = 0; i < numAtoms; i++) {
        int anchor = environment.anchor[i];
        if (anchor < 0)
            continue;
        int m = environment.moleculeIndex[i];
        Vec3 d = minimumImage(sums[m] / counts[m] - positionsNm[anchor], environment.periodic, environment.boxNm);
        double norm = std::sqrt(d.dot(d));
        if (norm > 0)
            for (int k = 0; k < 3; k++)
                directions[3 * i + k] = static_cast<float>(d[k] / norm);
    }
    return directions;
}

} // namespace MRLPlugin
