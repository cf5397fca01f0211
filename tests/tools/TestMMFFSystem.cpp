// SPDX-License-Identifier: MIT
// The MMFF94 -> OpenMM translation against RDKit's own MMFF94: energies and forces of the Reference platform are
// compared with RDKit's ForceField (calcEnergy, calcGrad) for every molecule of tests/data/mmff_molecules.smi, term
// by term and in total, for multi-molecule environments (interaction energies and forces), and the periodic
// option against the no-cutoff energy and finite differences.
#include "MMFFSystem.h"

#include "openmm/Context.h"
#include "openmm/Force.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"

// RDKit's MMFF headers are not self-contained: RDKitBase.h first.
#include <GraphMol/RDKitBase.h>
#include <sstream>

#include <ForceField/ForceField.h>
#include <GraphMol/DistGeomHelpers/Embedder.h>
#include <GraphMol/FileParsers/FileParsers.h>
#include <GraphMol/ForceFieldHelpers/MMFF/AtomTyper.h>
#include <GraphMol/ForceFieldHelpers/MMFF/Builder.h>
#include <GraphMol/ForceFieldHelpers/MMFF/MMFF.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RWMol.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace MRLPlugin;
using OpenMM::Vec3;

namespace {

constexpr double KJ_PER_KCAL = 4.184;
constexpr double NM_PER_ANGSTROM = 0.1;

// Tolerances: energies agree to 1e-4 relative to max(|E_RDKit|, ENERGY_FLOOR) and forces to an RMS difference of
// 1e-4 times the RMS RDKit force (per term: times max(RMS force, FORCE_FLOOR)).  The floors keep terms and
// molecules whose energy is close to zero from asking for an absolute agreement below 1 kJ/mol (0.24 kcal/mol)
// times 1e-4.  Both sides are computed in double precision, so the measured errors are far smaller.
constexpr double TOLERANCE = 1e-4;
constexpr double ENERGY_FLOOR = 1.0; // kJ/mol
constexpr double FORCE_FLOOR = 1.0;  // kJ/mol/nm

struct TestMolecule {
    std::string smiles, name;
};

std::vector<TestMolecule> readTestMolecules() {
    std::ifstream in(std::string(MRL_TEST_DATA) + "/mmff_molecules.smi");
    if (!in)
        throw std::runtime_error("cannot open " + std::string(MRL_TEST_DATA) + "/mmff_molecules.smi");
    std::vector<TestMolecule> molecules;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        TestMolecule molecule;
        if (!(fields >> molecule.smiles) || molecule.smiles[0] == '#')
            continue;
        fields >> molecule.name;
        molecules.push_back(molecule);
    }
    return molecules;
}

/// The molecule with hydrogens, embedded by ETKDGv3 (fixed seed), briefly MMFF-optimized, then every coordinate
/// perturbed by a Gaussian of width `perturbationAngstrom` (so that forces are far from zero).
std::unique_ptr<RDKit::RWMol> prepareMolecule(const std::string& smiles, unsigned int seed,
                                              double perturbationAngstrom = 0.05) {
    std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol(smiles));
    if (!mol)
        throw std::runtime_error("RDKit cannot parse " + smiles);
    RDKit::MolOps::addHs(*mol);
    RDKit::DGeomHelpers::EmbedParameters params(RDKit::DGeomHelpers::ETKDGv3);
    params.randomSeed = static_cast<int>(seed);
    if (RDKit::DGeomHelpers::EmbedMolecule(*mol, params) < 0)
        throw std::runtime_error("RDKit cannot embed " + smiles);
    RDKit::MMFF::MMFFOptimizeMolecule(*mol, 50);
    std::mt19937 random(seed);
    std::normal_distribution<double> gaussian(0.0, perturbationAngstrom);
    RDKit::Conformer& conformer = mol->getConformer();
    for (unsigned int i = 0; i < mol->getNumAtoms(); ++i) {
        RDGeom::Point3D& p = conformer.getAtomPos(i);
        p.x += gaussian(random);
        p.y += gaussian(random);
        p.z += gaussian(random);
    }
    return mol;
}

std::vector<Vec3> positionsNm(const RDKit::ROMol& mol) {
    std::vector<Vec3> positions;
    const RDKit::Conformer& conformer = mol.getConformer();
    for (unsigned int i = 0; i < mol.getNumAtoms(); ++i) {
        const RDGeom::Point3D& p = conformer.getAtomPos(i);
        positions.emplace_back(p.x * NM_PER_ANGSTROM, p.y * NM_PER_ANGSTROM, p.z * NM_PER_ANGSTROM);
    }
    return positions;
}

struct EnergyForces {
    double energy = 0.0;      // kJ/mol
    std::vector<Vec3> forces; // kJ/mol/nm
};

/// Which of RDKit's MMFF terms to include.
struct Terms {
    bool bond = true, angle = true, stretchBend = true, oop = true, torsion = true, vdw = true, ele = true;
    static Terms only(bool Terms::*term) {
        Terms terms{false, false, false, false, false, false, false};
        terms.*term = true;
        return terms;
    }
};

/// RDKit's MMFF energy and forces (-gradient) for the molecule's conformer, all pairs included (interfragment too).
EnergyForces rdkitEnergyForces(const RDKit::ROMol& input, const std::string& variant = "MMFF94",
                               const Terms& terms = Terms(), double dielectric = 1.0) {
    RDKit::RWMol mol(input);
    RDKit::MMFF::MMFFMolProperties props(mol, variant);
    if (!props.isValid())
        throw std::runtime_error("RDKit cannot type the molecule");
    props.setMMFFBondTerm(terms.bond);
    props.setMMFFAngleTerm(terms.angle);
    props.setMMFFStretchBendTerm(terms.stretchBend);
    props.setMMFFOopTerm(terms.oop);
    props.setMMFFTorsionTerm(terms.torsion);
    props.setMMFFVdWTerm(terms.vdw);
    props.setMMFFEleTerm(terms.ele);
    props.setMMFFDielectricConstant(dielectric);
    std::unique_ptr<ForceFields::ForceField> ff(RDKit::MMFF::constructForceField(mol, &props, 100.0, -1, false));
    EnergyForces result;
    result.energy = ff->calcEnergy() * KJ_PER_KCAL;
    std::vector<double> gradient(3 * mol.getNumAtoms(), 0.0);
    ff->calcGrad(gradient.data());
    const double scale = -KJ_PER_KCAL / NM_PER_ANGSTROM; // kcal/mol/Å gradient -> kJ/mol/nm force
    for (unsigned int i = 0; i < mol.getNumAtoms(); ++i)
        result.forces.emplace_back(scale * gradient[3 * i], scale * gradient[3 * i + 1], scale * gradient[3 * i + 2]);
    return result;
}

/// A Reference-platform Context for a System (which it owns).
class Evaluator {
public:
    explicit Evaluator(OpenMM::System* system)
        : system(system), integrator(0.001),
          context(*system, integrator, OpenMM::Platform::getPlatformByName("Reference")) {}
    EnergyForces evaluate(const std::vector<Vec3>& positions, int groups = -1) {
        context.setPositions(positions);
        OpenMM::State state = context.getState(OpenMM::State::Energy | OpenMM::State::Forces, false, groups);
        return {state.getPotentialEnergy(), state.getForces()};
    }
    double energy(const std::vector<Vec3>& positions, int groups = -1) {
        context.setPositions(positions);
        return context.getState(OpenMM::State::Energy, false, groups).getPotentialEnergy();
    }
    OpenMM::Context& getContext() { return context; }

private:
    std::unique_ptr<OpenMM::System> system;
    OpenMM::VerletIntegrator integrator;
    OpenMM::Context context;
};

double rms(const std::vector<Vec3>& forces) {
    double sum = 0.0;
    for (const Vec3& f : forces)
        sum += f.dot(f);
    return forces.empty() ? 0.0 : std::sqrt(sum / forces.size());
}

double rmsDifference(const std::vector<Vec3>& a, const std::vector<Vec3>& b) {
    std::vector<Vec3> difference;
    for (size_t i = 0; i < a.size(); ++i)
        difference.push_back(a[i] - b[i]);
    return rms(difference);
}

/// Relative errors of a computed energy and forces against expected ones, with the floors described above.
struct Errors {
    double energy, forces;
};
Errors relativeErrors(const EnergyForces& computed, const EnergyForces& expected, double forceFloor) {
    return {std::fabs(computed.energy - expected.energy) / std::max(std::fabs(expected.energy), ENERGY_FLOOR),
            rmsDifference(computed.forces, expected.forces) / std::max(rms(expected.forces), forceFloor)};
}

/// Puts each MMFF force into its own group: 0 bonds, 1 angles (linear too), 2 stretch-bend, 3 out-of-plane,
/// 4 torsions, 5 intramolecular vdW, 6 intramolecular electrostatics, 7 intermolecular.
void groupForcesByTerm(OpenMM::System& system) {
    const std::map<std::string, int> groupOfForce = {{"MMFF94 bond stretch", 0},
                                                     {"MMFF94 angle bend", 1},
                                                     {"MMFF94 linear angle bend", 1},
                                                     {"MMFF94 stretch-bend", 2},
                                                     {"MMFF94 out-of-plane bend", 3},
                                                     {"MMFF94 torsion", 4},
                                                     {"MMFF94 intramolecular vdW", 5},
                                                     {"MMFF94 intramolecular electrostatics", 6},
                                                     {"MMFF94 intermolecular nonbonded", 7}};
    for (int i = 0; i < system.getNumForces(); ++i)
        system.getForce(i).setForceGroup(groupOfForce.at(system.getForce(i).getName()));
}

/// Expects `statement` to throw an OpenMMException whose message contains every string of `parts`.
void expectErrorMessage(const std::function<void()>& statement, const std::vector<std::string>& parts) {
    try {
        statement();
        ADD_FAILURE() << "no exception thrown";
    } catch (const OpenMM::OpenMMException& e) {
        for (const std::string& part : parts)
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
                << "the message\n  " << e.what() << "\ndoes not contain\n  " << part;
    }
}

/// A random rotation matrix (uniform quaternion).
std::array<Vec3, 3> randomRotation(std::mt19937& random) {
    std::normal_distribution<double> gaussian;
    double q[4];
    double norm = 0.0;
    for (double& c : q) {
        c = gaussian(random);
        norm += c * c;
    }
    norm = std::sqrt(norm);
    const double w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
    return {Vec3(1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            Vec3(2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            Vec3(2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))};
}

Vec3 centroid(const RDKit::ROMol& mol) {
    Vec3 sum;
    for (const RDGeom::Point3D& p : mol.getConformer().getPositions())
        sum += Vec3(p.x, p.y, p.z);
    return sum / mol.getNumAtoms();
}

double radius(const RDKit::ROMol& mol) {
    const Vec3 center = centroid(mol);
    double r = 0.0;
    for (const RDGeom::Point3D& p : mol.getConformer().getPositions()) {
        const Vec3 d = Vec3(p.x, p.y, p.z) - center;
        r = std::max(r, std::sqrt(d.dot(d)));
    }
    return r;
}

/// Rotates the molecule's conformer about its centroid and moves the centroid to `center` (Å).
void place(RDKit::ROMol& mol, const std::array<Vec3, 3>& rotation, const Vec3& center) {
    const Vec3 oldCenter = centroid(mol);
    for (RDGeom::Point3D& p : mol.getConformer().getPositions()) {
        const Vec3 d = Vec3(p.x, p.y, p.z) - oldCenter;
        const Vec3 r = center + Vec3(rotation[0].dot(d), rotation[1].dot(d), rotation[2].dot(d));
        p = RDGeom::Point3D(r[0], r[1], r[2]);
    }
}

/// The molecules, each with its conformer, as one molecule with one conformer (fragments in the given order).
std::unique_ptr<RDKit::RWMol> combine(const std::vector<std::unique_ptr<RDKit::RWMol>>& molecules) {
    auto combined = std::make_unique<RDKit::RWMol>();
    std::vector<RDGeom::Point3D> positions;
    for (const auto& mol : molecules) {
        combined->insertMol(*mol);
        for (const RDGeom::Point3D& p : mol->getConformer().getPositions())
            positions.push_back(p);
    }
    combined->clearConformers();
    auto* conformer = new RDKit::Conformer(combined->getNumAtoms());
    for (unsigned int i = 0; i < positions.size(); ++i)
        conformer->setAtomPos(i, positions[i]);
    combined->addConformer(conformer, true);
    RDKit::MolOps::sanitizeMol(*combined);
    return combined;
}

/// A solute surrounded by copies of a solvent molecule (each rotated at random), placed a few Å apart.
struct Environment {
    std::vector<std::unique_ptr<RDKit::RWMol>> molecules; // solute first
    std::unique_ptr<RDKit::RWMol> combined;
};
Environment makeEnvironment(const std::string& solute, const std::string& solvent, int numCopies, unsigned int seed,
                            double gapAngstrom = 2.5) {
    Environment environment;
    environment.molecules.push_back(prepareMolecule(solute, seed));
    place(*environment.molecules[0], {Vec3(1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1)}, Vec3());
    const double soluteRadius = radius(*environment.molecules[0]);
    const std::vector<Vec3> directions = {Vec3(1, 0, 0),  Vec3(-1, 0, 0), Vec3(0, 1, 0),
                                          Vec3(0, -1, 0), Vec3(0, 0, 1),  Vec3(0, 0, -1)};
    std::mt19937 random(seed);
    for (int copy = 0; copy < numCopies; ++copy) {
        auto mol = prepareMolecule(solvent, seed + 1 + copy);
        const double distance = soluteRadius + radius(*mol) + gapAngstrom;
        place(*mol, randomRotation(random), directions[copy % directions.size()] * distance);
        environment.molecules.push_back(std::move(mol));
    }
    environment.combined = combine(environment.molecules);
    return environment;
}

class MMFFSystem : public ::testing::Test {
protected:
    static void SetUpTestSuite() { molecules = new std::vector<TestMolecule>(readTestMolecules()); }
    static void TearDownTestSuite() {
        delete molecules;
        molecules = nullptr;
    }
    static std::vector<TestMolecule>* molecules;
};
std::vector<TestMolecule>* MMFFSystem::molecules = nullptr;

/// Compares total (and, if `perTerm`, per-term) energies and forces with RDKit for every test molecule; returns the
/// largest errors of the totals.
Errors compareMoleculeSet(const std::vector<TestMolecule>& molecules, const std::string& variant, bool perTerm) {
    Errors worst{0.0, 0.0};
    MMFFOptions options;
    options.variant = variant;
    for (size_t index = 0; index < molecules.size(); ++index) {
        const TestMolecule& molecule = molecules[index];
        SCOPED_TRACE(molecule.name + " " + molecule.smiles + " (" + variant + ")");
        auto mol = prepareMolecule(molecule.smiles, 1000 + static_cast<unsigned int>(index));
        const std::vector<Vec3> positions = positionsNm(*mol);
        auto* system = createMMFFSystem(*mol, options, molecule.name);
        EXPECT_EQ(system->getNumParticles(), static_cast<int>(mol->getNumAtoms()));
        groupForcesByTerm(*system);
        Evaluator openmm(system);

        // The total energy and forces.
        const EnergyForces expected = rdkitEnergyForces(*mol, variant);
        const Errors errors = relativeErrors(openmm.evaluate(positions), expected, 0.0);
        EXPECT_LE(errors.energy, TOLERANCE) << "E_RDKit = " << expected.energy << " kJ/mol";
        EXPECT_LE(errors.forces, TOLERANCE) << "RMS force = " << rms(expected.forces) << " kJ/mol/nm";
        EXPECT_GT(rms(expected.forces), 10.0) << "the perturbed structure should have large forces";
        worst.energy = std::max(worst.energy, errors.energy);
        worst.forces = std::max(worst.forces, errors.forces);

        // Term by term (the nonbonded terms together when the molecule holds several fragments).
        if (!perTerm)
            continue;
        const std::vector<int> moleculeIndex = moleculeIndexOfAtoms(*mol);
        const bool oneFragment = *std::max_element(moleculeIndex.begin(), moleculeIndex.end()) == 0;
        std::vector<std::pair<std::string, std::pair<Terms, int>>> checks = {
            {"bond stretch", {Terms::only(&Terms::bond), 1 << 0}},
            {"angle bend", {Terms::only(&Terms::angle), 1 << 1}},
            {"stretch-bend", {Terms::only(&Terms::stretchBend), 1 << 2}},
            {"out-of-plane", {Terms::only(&Terms::oop), 1 << 3}},
            {"torsion", {Terms::only(&Terms::torsion), 1 << 4}}};
        Terms nonbonded = Terms::only(&Terms::vdw);
        nonbonded.ele = true;
        checks.push_back({"nonbonded", {nonbonded, (1 << 5) | (1 << 6) | (1 << 7)}});
        if (oneFragment) {
            checks.push_back({"vdW", {Terms::only(&Terms::vdw), 1 << 5}});
            checks.push_back({"electrostatics", {Terms::only(&Terms::ele), 1 << 6}});
        }
        for (const auto& [term, check] : checks) {
            const EnergyForces termExpected = rdkitEnergyForces(*mol, variant, check.first);
            const Errors termErrors =
                relativeErrors(openmm.evaluate(positions, check.second), termExpected, FORCE_FLOOR);
            EXPECT_LE(termErrors.energy, TOLERANCE) << term << ": E_RDKit = " << termExpected.energy << " kJ/mol";
            EXPECT_LE(termErrors.forces, TOLERANCE) << term << ": RMS force = " << rms(termExpected.forces);
        }
    }
    return worst;
}

TEST_F(MMFFSystem, MMFF94MatchesRDKitForEveryTestMolecule) {
    ASSERT_GE(molecules->size(), 60u);
    const Errors worst = compareMoleculeSet(*molecules, "MMFF94", true);
    std::cout << "[ MMFF94 vs RDKit ] " << molecules->size()
              << " molecules: max relative energy error = " << worst.energy
              << ", max relative RMS force error = " << worst.forces << std::endl;
}

TEST_F(MMFFSystem, MMFF94sMatchesRDKitForEveryTestMolecule) {
    const Errors worst = compareMoleculeSet(*molecules, "MMFF94s", false);
    std::cout << "[ MMFF94s vs RDKit ] " << molecules->size()
              << " molecules: max relative energy error = " << worst.energy
              << ", max relative RMS force error = " << worst.forces << std::endl;
}

TEST_F(MMFFSystem, VdWParametersDependOnlyOnAtomTypes) {
    // The intermolecular force tabulates R* and ε by MMFF type pair: RDKit's per-pair values must agree.
    std::map<std::pair<int, int>, std::pair<double, double>> byTypes;
    for (size_t index = 0; index < molecules->size(); ++index) {
        std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol((*molecules)[index].smiles));
        RDKit::MolOps::addHs(*mol);
        RDKit::MMFF::MMFFMolProperties props(*mol);
        ASSERT_TRUE(props.isValid());
        for (unsigned int i = 0; i < mol->getNumAtoms(); ++i) {
            for (unsigned int j = 0; j < mol->getNumAtoms(); ++j) {
                RDKit::MMFF::MMFFVdWRijstarEps params;
                ASSERT_TRUE(props.getMMFFVdWParams(i, j, params));
                const std::pair<int, int> types(props.getMMFFAtomType(i), props.getMMFFAtomType(j));
                const auto [entry, added] = byTypes.emplace(types, std::make_pair(params.R_ij_star, params.epsilon));
                if (!added) {
                    EXPECT_EQ(entry->second.first, params.R_ij_star) << (*molecules)[index].name;
                    EXPECT_EQ(entry->second.second, params.epsilon) << (*molecules)[index].name;
                }
            }
        }
    }
    EXPECT_GT(byTypes.size(), 500u);
}

TEST_F(MMFFSystem, EnvironmentsMatchRDKitAndSplitIntoMolecules) {
    const std::vector<std::pair<std::string, std::string>> environments = {
        {"CC(=O)Oc1ccccc1C(=O)O", "O"},              // aspirin in water
        {"CC(=O)[O-]", "O"},                         // acetate in water
        {"C[NH3+]", "CO"},                           // methylammonium in methanol
        {"Cn1cnc2c1c(=O)n(C)c(=O)n2C", "ClC(Cl)Cl"}, // caffeine in chloroform
        {"NC(=[NH2+])N", "CS(C)=O"},                 // guanidinium in DMSO
        {"c1ccncc1", "CC#N"},                        // pyridine in acetonitrile
    };
    double worstInteraction = 0.0;
    for (size_t e = 0; e < environments.size(); ++e) {
        const auto& [solute, solvent] = environments[e];
        SCOPED_TRACE(solute + " with " + solvent);
        const int numCopies = 3 + static_cast<int>(e % 3);
        Environment environment = makeEnvironment(solute, solvent, numCopies, 77 + 10 * static_cast<unsigned int>(e));
        const RDKit::ROMol& mol = *environment.combined;
        const std::vector<Vec3> positions = positionsNm(mol);

        // Molecule f is fragment f: the solute, then the copies, in the order they were combined.
        const std::vector<int> moleculeIndex = moleculeIndexOfAtoms(mol);
        std::vector<int> expectedIndex;
        for (size_t f = 0; f < environment.molecules.size(); ++f)
            expectedIndex.insert(expectedIndex.end(), environment.molecules[f]->getNumAtoms(), static_cast<int>(f));
        ASSERT_EQ(moleculeIndex, expectedIndex);

        Evaluator openmm(createMMFFSystem(mol, MMFFOptions(), solute + " in " + solvent));
        const EnergyForces total = openmm.evaluate(positions);
        const EnergyForces intra = openmm.evaluate(positions, 1 << 0);
        const EnergyForces inter = openmm.evaluate(positions, 1 << 1);

        // The whole environment against RDKit (interfragment interactions included).
        const EnergyForces expected = rdkitEnergyForces(mol);
        const Errors errors = relativeErrors(total, expected, 0.0);
        EXPECT_LE(errors.energy, TOLERANCE);
        EXPECT_LE(errors.forces, TOLERANCE);
        EXPECT_NEAR(intra.energy + inter.energy, total.energy, 1e-9 * std::max(1.0, std::fabs(total.energy)));

        // Intramolecular: the sum of RDKit's energies of each molecule alone; intermolecular: the rest.
        EnergyForces expectedIntra{0.0, {}};
        for (const auto& molecule : environment.molecules) {
            const EnergyForces alone = rdkitEnergyForces(*molecule);
            expectedIntra.energy += alone.energy;
            expectedIntra.forces.insert(expectedIntra.forces.end(), alone.forces.begin(), alone.forces.end());
        }
        EnergyForces expectedInter{expected.energy - expectedIntra.energy, {}};
        for (size_t i = 0; i < expected.forces.size(); ++i)
            expectedInter.forces.push_back(expected.forces[i] - expectedIntra.forces[i]);
        const Errors intraErrors = relativeErrors(intra, expectedIntra, 0.0);
        EXPECT_LE(intraErrors.energy, TOLERANCE);
        EXPECT_LE(intraErrors.forces, TOLERANCE);
        const Errors interErrors = relativeErrors(inter, expectedInter, FORCE_FLOOR);
        EXPECT_LE(interErrors.energy, TOLERANCE) << "E_interaction(RDKit) = " << expectedInter.energy;
        EXPECT_LE(interErrors.forces, TOLERANCE);
        EXPECT_GT(std::fabs(expectedInter.energy), 1.0) << "the molecules should interact";
        worstInteraction = std::max({worstInteraction, interErrors.energy, interErrors.forces});
    }
    std::cout << "[ MMFF94 environments ] max relative interaction energy/force error = " << worstInteraction
              << std::endl;
}

TEST_F(MMFFSystem, DielectricConstantMatchesRDKit) {
    Environment environment = makeEnvironment("CC(=O)[O-]", "CO", 3, 5);
    MMFFOptions options;
    options.dielectric = 4.0;
    Evaluator openmm(createMMFFSystem(*environment.combined, options, "acetate in methanol"));
    const EnergyForces expected = rdkitEnergyForces(*environment.combined, "MMFF94", Terms(), 4.0);
    const Errors errors = relativeErrors(openmm.evaluate(positionsNm(*environment.combined)), expected, 0.0);
    EXPECT_LE(errors.energy, TOLERANCE);
    EXPECT_LE(errors.forces, TOLERANCE);
}

TEST_F(MMFFSystem, CallersMoleculeIsNotModified) {
    auto mol = prepareMolecule("c1ccc2[nH]ccc2c1", 3);
    const std::string before = RDKit::MolToSmiles(*mol);
    std::vector<bool> aromatic;
    for (const RDKit::Atom* atom : mol->atoms())
        aromatic.push_back(atom->getIsAromatic());
    std::unique_ptr<OpenMM::System> system(createMMFFSystem(*mol, MMFFOptions(), "indole"));
    EXPECT_EQ(RDKit::MolToSmiles(*mol), before);
    for (const RDKit::Atom* atom : mol->atoms())
        EXPECT_EQ(atom->getIsAromatic(), aromatic[atom->getIdx()]);
    for (const RDKit::Atom* atom : mol->atoms())
        EXPECT_DOUBLE_EQ(system->getParticleMass(atom->getIdx()), atom->getMass());
}

TEST_F(MMFFSystem, MoleculeThatMMFF94CannotTypeIsRejected) {
    // MMFF94 has no types for boron, selenium or xenon, and RDKit's typer none for sulfur with six fluorines.
    for (const auto& [smilesText, atomText, problem] : std::vector<std::array<std::string, 3>>{
             {"B(O)(O)O", "atom 0 (B)", "MMFF94 has no atom types for B"},
             {"C[Se]C", "atom 1 (Se)", "MMFF94 has no atom types for Se"},
             {"O=[Xe](=O)=O", "atom 1 (Xe)", "MMFF94 has no atom types for Xe"},
             {"FS(F)(F)(F)(F)F", "atom 1 (S)", "no MMFF94 atom type for this bonding (S with 6 neighbours"}}) {
        const std::string& smiles = smilesText; // a structured binding cannot be captured by clang 14's lambdas
        std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol(smiles));
        RDKit::MolOps::addHs(*mol);
        RDKit::RWMol copy(*mol);
        ASSERT_FALSE(RDKit::MMFF::MMFFMolProperties(copy).isValid()) << smiles << " is typed by RDKit";
        expectErrorMessage([&] { delete createMMFFSystem(*mol, MMFFOptions(), smiles); },
                           {"MMFF94 cannot type " + atomText + " of molecule \"" + smiles + "\"", problem,
                            "Use a molecule with only the elements"});
    }
}

TEST_F(MMFFSystem, MoleculeWithoutExplicitHydrogensIsRejected) {
    std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol("CCO"));
    expectErrorMessage(
        [&] { delete createMMFFSystem(*mol, MMFFOptions(), "ethanol"); },
        {"Molecule \"ethanol\" has implicit hydrogens", "atom 0 (C) carries 3 hydrogen(s)", "RDKit::MolOps::addHs"});
}

TEST_F(MMFFSystem, MolBlocksGiveTheSystemOfTheJoinedMolecules) {
    // The Python API's entry: one mol block per molecule, joined in order, the same energies per force group.
    Environment environment = makeEnvironment("CC(=O)[O-]", "C[NH3+]", 2, 21);
    const std::vector<Vec3> positions = positionsNm(*environment.combined);
    std::vector<std::string> blocks, names;
    for (const auto& mol : environment.molecules) {
        blocks.push_back(RDKit::MolToMolBlock(*mol, true, -1, /*kekulize=*/true));
        names.push_back("molecule " + std::to_string(names.size()));
    }
    Evaluator joined(createMMFFSystemFromMolBlocks(blocks, names, MMFFOptions()));
    Evaluator direct(createMMFFSystem(*environment.combined, MMFFOptions(), "acetate with methylammonium"));
    EXPECT_EQ(joined.getContext().getSystem().getNumParticles(), static_cast<int>(positions.size()));
    for (int groups : {1 << 0, 1 << 1})
        EXPECT_NEAR(joined.energy(positions, groups), direct.energy(positions, groups),
                    1e-12 * std::fabs(direct.energy(positions, groups)));
    // Errors name the molecule and the atom within it; an entry with two fragments and a bad block are refused.
    std::unique_ptr<RDKit::RWMol> boron(RDKit::SmilesToMol("B(O)(O)O"));
    RDKit::MolOps::addHs(*boron);
    expectErrorMessage(
        [&] {
            delete createMMFFSystemFromMolBlocks({blocks[0], RDKit::MolToMolBlock(*boron)}, {"a", "b"}, {});
        },
        {"MMFF94 cannot type atom 0 (B) of molecule \"b\""});
    std::unique_ptr<RDKit::RWMol> salt(RDKit::SmilesToMol("C[NH3+].[Cl-]"));
    RDKit::MolOps::addHs(*salt);
    expectErrorMessage([&] { delete createMMFFSystemFromMolBlocks({RDKit::MolToMolBlock(*salt)}, {"salt"}, {}); },
                       {"Molecule \"salt\" holds 2 fragments", "GetMolFrags(mol, asMols=True)"});
    expectErrorMessage([&] { delete createMMFFSystemFromMolBlocks({"not a mol block"}, {"junk"}, {}); },
                       {"RDKit cannot read the mol block of molecule \"junk\""});
    expectErrorMessage([&] { delete createMMFFSystemFromMolBlocks({}, {}, {}); }, {"at least one molecule"});
}

TEST_F(MMFFSystem, InvalidOptionsAreRejected) {
    auto mol = prepareMolecule("CO", 1);
    MMFFOptions options;
    options.variant = "MMFF99";
    expectErrorMessage([&] { delete createMMFFSystem(*mol, options, "methanol"); },
                       {"MMFFOptions::variant is \"MMFF99\"", "\"MMFF94\" or \"MMFF94s\"", "\"methanol\""});
    options = MMFFOptions();
    options.dielectric = 0.0;
    expectErrorMessage([&] { delete createMMFFSystem(*mol, options, "methanol"); },
                       {"MMFFOptions::dielectric is 0", "positive"});
    options = MMFFOptions();
    options.periodic = true;
    options.switchWidthNm = 1.0;
    expectErrorMessage([&] { delete createMMFFSystem(*mol, options, "methanol"); },
                       {"MMFFOptions::switchWidthNm is 1 nm", "less than cutoffNm"});
    RDKit::RWMol empty;
    expectErrorMessage([&] { delete createMMFFSystem(empty, MMFFOptions(), "nothing"); }, {"\"nothing\" has no atoms"});
}

TEST_F(MMFFSystem, PeriodicMatchesNoCutoffForCompactNeutralCluster) {
    // All intermolecular pairs lie within the switching distance: the switch is 1 and the Coulomb shift sums to
    // zero between neutral molecules, so the periodic energy and forces are those without cutoff, even with every
    // atom wrapped into the box on its own (bonded terms and pairs follow the minimum image).
    Environment environment = makeEnvironment("CNC(C)=O", "O", 4, 11, 1.5);
    const RDKit::ROMol& mol = *environment.combined;
    const std::vector<Vec3> positions = positionsNm(mol);
    Evaluator reference(createMMFFSystem(mol, MMFFOptions(), "NMA in water"));
    MMFFOptions options;
    options.periodic = true;
    options.cutoffNm = 2.0;
    options.switchWidthNm = 0.2;
    auto* system = createMMFFSystem(mol, options, "NMA in water");
    const double box = 5.0; // nm
    system->setDefaultPeriodicBoxVectors(Vec3(box, 0, 0), Vec3(0, box, 0), Vec3(0, 0, box));
    Evaluator periodic(system);
    std::vector<Vec3> wrapped;
    for (const Vec3& p : positions) {
        Vec3 w = p + Vec3(0.3 * box, 0.5 * box, 0.99 * box); // the cluster straddles the box faces
        for (int d = 0; d < 3; ++d)
            w[d] -= box * std::floor(w[d] / box);
        wrapped.push_back(w);
    }
    for (int groups : {-1, 1 << 0, 1 << 1}) {
        SCOPED_TRACE("groups " + std::to_string(groups));
        const EnergyForces expected = reference.evaluate(positions, groups);
        const Errors errors = relativeErrors(periodic.evaluate(wrapped, groups), expected, FORCE_FLOOR);
        EXPECT_LE(errors.energy, 1e-6) << "E(no cutoff) = " << expected.energy;
        EXPECT_LE(errors.forces, 1e-6);
    }
}

TEST_F(MMFFSystem, PeriodicForcesAreEnergyDerivatives) {
    // Molecules spread over a small box so that many intermolecular pairs are in the switching region or beyond
    // the cutoff, and some interact through the box faces; forces must be -dE/dx (central differences).
    std::vector<std::unique_ptr<RDKit::RWMol>> molecules;
    molecules.push_back(prepareMolecule("CC(=O)[O-]", 21));
    for (int copy = 0; copy < 7; ++copy)
        molecules.push_back(prepareMolecule(copy % 2 ? "O" : "C[NH3+]", 22 + copy));
    const double box = 2.2; // nm
    const double boxAngstrom = box / NM_PER_ANGSTROM;
    std::mt19937 random(23);
    std::uniform_real_distribution<double> uniform(0.0, boxAngstrom);
    // Random places, each at least 2.5 Å (minimum image) from the atoms of the molecules placed before.
    auto closestApproach = [&](const RDKit::ROMol& a, const RDKit::ROMol& b) {
        double closest = boxAngstrom;
        for (const RDGeom::Point3D& p : a.getConformer().getPositions()) {
            for (const RDGeom::Point3D& q : b.getConformer().getPositions()) {
                RDGeom::Point3D d = p - q;
                d.x -= boxAngstrom * std::round(d.x / boxAngstrom);
                d.y -= boxAngstrom * std::round(d.y / boxAngstrom);
                d.z -= boxAngstrom * std::round(d.z / boxAngstrom);
                closest = std::min(closest, d.length());
            }
        }
        return closest;
    };
    for (size_t m = 0; m < molecules.size(); ++m) {
        bool clear = false;
        for (int attempt = 0; attempt < 1000 && !clear; ++attempt) {
            place(*molecules[m], randomRotation(random), Vec3(uniform(random), uniform(random), uniform(random)));
            clear = true;
            for (size_t other = 0; other < m && clear; ++other)
                clear = closestApproach(*molecules[m], *molecules[other]) > 2.5;
        }
        ASSERT_TRUE(clear) << "cannot place molecule " << m;
    }
    auto mol = combine(molecules);
    MMFFOptions options;
    options.periodic = true;
    options.cutoffNm = 1.0;
    options.switchWidthNm = 0.3;
    auto* system = createMMFFSystem(*mol, options, "acetate, methylammonium and water");
    system->setDefaultPeriodicBoxVectors(Vec3(box, 0, 0), Vec3(0, box, 0), Vec3(0, 0, box));
    Evaluator openmm(system);
    std::vector<Vec3> positions = positionsNm(*mol);
    const double h = 1e-5; // nm
    for (int groups : {-1, 1 << 1}) {
        SCOPED_TRACE("groups " + std::to_string(groups));
        const EnergyForces analytic = openmm.evaluate(positions, groups);
        std::vector<Vec3> numeric(positions.size());
        for (size_t i = 0; i < positions.size(); ++i) {
            for (int d = 0; d < 3; ++d) {
                std::vector<Vec3> displaced = positions;
                displaced[i][d] = positions[i][d] + h;
                const double plus = openmm.energy(displaced, groups);
                displaced[i][d] = positions[i][d] - h;
                const double minus = openmm.energy(displaced, groups);
                numeric[i][d] = -(plus - minus) / (2 * h);
            }
        }
        EXPECT_LE(rmsDifference(analytic.forces, numeric), 1e-5 * rms(numeric) + 1e-4) << "RMS force " << rms(numeric);
        EXPECT_GT(rms(numeric), 1.0);
    }
}

} // namespace
