// SPDX-License-Identifier: MIT
// mrl-envgen carve and export, run as the real executable on a real OpenMM System (XML), a PDB and a DCD
// written here following OpenMM's dcdfile.py, and checked against independent numbers: forces and energies
// recomputed in a fresh Context, the carved molecules found by a brute-force minimum-image search, the
// extended XYZ parsed back and converted to OpenMM units.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "DcdTestFile.h"
#include "MRLDataset.h"
#include "openmm/Context.h"
#include "openmm/HarmonicAngleForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/NonbondedForce.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/serialization/XmlSerializer.h"

using namespace MRLPlugin;
using OpenMM::Vec3;
namespace fs = std::filesystem;

namespace {

const double BOX = 1.8;    // nm
const double RADIUS = 0.5; // nm
const double EV = 96.48533212;

/// A small periodic simulation: 2 ligands (C, O, H, H; bonds and angles, group 0), 30 rigid waters (three
/// constraints each, no bond force), 3 sodium ions (no element in the PDB), a NonbondedForce in group 1.
struct Simulation {
    OpenMM::System system;
    std::vector<std::string> residueNames; // per atom
    std::vector<int> residueIndex;         // per atom
    std::vector<int> elements;             // per atom (the true ones)
    std::vector<bool> elementInPdb;        // per atom
    std::vector<std::vector<int>> molecules;
    std::vector<int> moleculeOf;
    std::set<std::pair<int, int>> chemicalBonds; // what the record's bond list should hold
    std::vector<std::vector<Vec3>> frames;       // nm, as carve reads them back from the DCD (float32 Angstrom)
    std::vector<double> boxes;                   // cubic box edge per frame, nm
};

Simulation makeSimulation(int numFrames, unsigned seed = 11) {
    Simulation sim;
    std::mt19937 random(seed);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    auto* bonds = new OpenMM::HarmonicBondForce();
    auto* angles = new OpenMM::HarmonicAngleForce();
    auto* nonbonded = new OpenMM::NonbondedForce();
    nonbonded->setNonbondedMethod(OpenMM::NonbondedForce::CutoffPeriodic);
    nonbonded->setCutoffDistance(0.8);
    nonbonded->setForceGroup(1);
    sim.system.setDefaultPeriodicBoxVectors(Vec3(BOX, 0, 0), Vec3(0, BOX, 0), Vec3(0, 0, BOX));

    // Sites of a 4x4x4 grid (spacing 0.45 nm, some on the box faces), each used once, jittered.
    std::vector<Vec3> sites;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 4; k++)
                sites.push_back(Vec3(0.45 * i + 0.02, 0.45 * j + 0.02, 0.45 * k + 0.02));
    std::shuffle(sites.begin(), sites.end(), random);
    std::vector<Vec3> positions;
    std::vector<std::pair<int, int>> bondPairs;
    int site = 0;
    auto addMolecule = [&](const std::string& name, const std::vector<int>& z, const std::vector<double>& masses,
                           const std::vector<double>& charges, const std::vector<Vec3>& local, bool pdbElement) {
        int first = sim.system.getNumParticles();
        Vec3 center = sites[site++] + Vec3(uniform(random), uniform(random), uniform(random)) * 0.05;
        double angle = M_PI * uniform(random);
        std::vector<int> atoms;
        for (size_t a = 0; a < z.size(); a++) {
            int index = sim.system.addParticle(masses[a]);
            nonbonded->addParticle(charges[a], z[a] == 1 ? 0.1 : 0.3, z[a] == 1 ? 0.0 : 0.5);
            Vec3 x = local[a];
            positions.push_back(center + Vec3(std::cos(angle) * x[0] - std::sin(angle) * x[1],
                                              std::sin(angle) * x[0] + std::cos(angle) * x[1], x[2]));
            sim.residueNames.push_back(name);
            sim.residueIndex.push_back(static_cast<int>(sim.molecules.size()));
            sim.elements.push_back(z[a]);
            sim.elementInPdb.push_back(pdbElement);
            sim.moleculeOf.push_back(static_cast<int>(sim.molecules.size()));
            atoms.push_back(index);
        }
        sim.molecules.push_back(atoms);
        return first;
    };
    auto distance = [](const Vec3& a, const Vec3& b) { return std::sqrt((a - b).dot(a - b)); };
    for (int l = 0; l < 2; l++) {
        std::vector<Vec3> local = {Vec3(0, 0, 0), Vec3(0.123, 0, 0), Vec3(-0.05, 0.09, 0), Vec3(-0.05, -0.09, 0)};
        int f = addMolecule("LIG", {6, 8, 1, 1}, {12.011, 15.999, 1.008, 1.008}, {0.3, -0.5, 0.1, 0.1}, local, true);
        for (int b : {1, 2, 3}) {
            bonds->addBond(f, f + b, distance(local[0], local[b]), 3e5);
            bondPairs.emplace_back(f, f + b);
            sim.chemicalBonds.insert({f, f + b});
        }
        angles->addAngle(f + 1, f, f + 2, 2.0, 400.0);
        angles->addAngle(f + 1, f, f + 3, 2.0, 400.0);
    }
    for (int w = 0; w < 30; w++) {
        std::vector<Vec3> local = {Vec3(0, 0, 0), Vec3(0.09572, 0, 0), Vec3(-0.024, 0.0927, 0)};
        int f = addMolecule("HOH", {8, 1, 1}, {15.999, 1.008, 1.008}, {-0.834, 0.417, 0.417}, local, true);
        sim.system.addConstraint(f, f + 1, 0.09572);
        sim.system.addConstraint(f, f + 2, 0.09572);
        sim.system.addConstraint(f + 1, f + 2, distance(local[1], local[2])); // an angle constraint, no bond
        bondPairs.emplace_back(f, f + 1);
        bondPairs.emplace_back(f, f + 2);
        sim.chemicalBonds.insert({f, f + 1});
        sim.chemicalBonds.insert({f, f + 2});
    }
    for (int i = 0; i < 3; i++)
        addMolecule("NA", {11}, {22.99}, {1.0}, {Vec3()}, false);
    nonbonded->createExceptionsFromBonds(bondPairs, 0.5, 0.5);
    bonds->setForceGroup(0);
    angles->setForceGroup(0);
    sim.system.addForce(bonds);
    sim.system.addForce(angles);
    sim.system.addForce(nonbonded);

    // Frames: small displacements, a slowly growing box, every atom wrapped into the box on its own (so
    // molecules are broken across the boundary), rounded like a DCD stores them.
    for (int f = 0; f < numFrames; f++) {
        double box = BOX * (1.0 + 0.005 * f);
        std::vector<Vec3> frame;
        for (const Vec3& p : positions) {
            Vec3 q = p * (box / BOX) + Vec3(uniform(random), uniform(random), uniform(random)) * 0.003;
            for (int k = 0; k < 3; k++) {
                q[k] -= box * std::floor(q[k] / box);
                q[k] = static_cast<double>(static_cast<float>(10.0 * q[k])) / 10.0;
            }
            frame.push_back(q);
        }
        sim.frames.push_back(frame);
        sim.boxes.push_back(box);
    }
    return sim;
}

// ---- files --------------------------------------------------------------------------------------

/// The DCD of the simulation's frames with their cubic boxes, as OpenMM's DCDFile writes it.
void writeDcd(const std::string& path, const Simulation& sim, bool bigEndian = false, bool unitCell = true) {
    std::vector<MRLTest::DcdCell> cells;
    for (size_t f = 0; unitCell && f < sim.frames.size(); f++) {
        double a = 10 * sim.boxes[f];
        cells.push_back({a, 0.0, a, 0.0, 0.0, a});
    }
    MRLTest::writeDcdFile(path, sim.frames, cells, 100, 50, 0.002, bigEndian);
}

void writePdb(const std::string& path, const Simulation& sim, int dropAtoms = 0) {
    std::ofstream out(path);
    out << "CRYST1   18.000   18.000   18.000  90.00  90.00  90.00 P 1           1\n";
    int n = sim.system.getNumParticles() - dropAtoms;
    const char* symbols[] = {"", "H", "", "", "", "", "C", "N", "O", "", "", "NA"};
    for (int i = 0; i < n; i++) {
        const Vec3& p = sim.frames[0][i];
        char line[100];
        std::snprintf(line, sizeof(line), "HETATM%5d %-4s %-3s %c%4d    %8.3f%8.3f%8.3f%6.2f%6.2f          %2s\n",
                      i + 1, symbols[sim.elements[i]], sim.residueNames[i].c_str(), 'A', sim.residueIndex[i] + 1,
                      10 * p[0], 10 * p[1], 10 * p[2], 1.0, 0.0, sim.elementInPdb[i] ? symbols[sim.elements[i]] : "");
        out << line;
    }
    out << "END\n";
}

void writeSystem(const std::string& path, const OpenMM::System& system) {
    std::ofstream out(path);
    OpenMM::XmlSerializer::serialize<OpenMM::System>(&system, "System", out);
}

/// A fresh directory per test (tests may run in parallel processes).
class CarveTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir = fs::temp_directory_path() /
              ("mrl-carve-" + std::string(info->name()) + "-" + std::to_string(static_cast<long>(getpid())));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    void TearDown() override {
        if (!HasFailure())
            fs::remove_all(dir);
        else
            std::printf("files kept in %s\n", dir.c_str());
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }

    /// Writes system.xml, top.pdb and traj.dcd.
    void writeInputs(const Simulation& sim) {
        writeSystem(path("system.xml"), sim.system);
        writePdb(path("top.pdb"), sim);
        writeDcd(path("traj.dcd"), sim);
    }

    /// Runs `mrl-envgen ARGS`; returns the exit status, stdout and stderr in `out` and `err`.
    int envgen(const std::string& args) {
        std::string command = std::string("'") + MRL_ENVGEN + "' " + args + " > '" + path("stdout.txt") + "' 2> '" +
                              path("stderr.txt") + "'";
        int status = std::system(command.c_str());
        out = slurp(path("stdout.txt"));
        err = slurp(path("stderr.txt"));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    std::string carveArgs(const std::string& output, const std::string& extra = "") {
        return "carve --system '" + path("system.xml") + "' --topology '" + path("top.pdb") + "' --trajectory '" +
               path("traj.dcd") + "' --output '" + path(output) + "' --no-progress " + extra;
    }
    static std::string slurp(const std::string& file) {
        std::ifstream in(file);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    fs::path dir;
    std::string out, err;
};

// ---- independent references ----------------------------------------------------------------------

/// Brute-force minimum image distance in a cubic box: every image -1..1 of each axis.
double imageDistance(const Vec3& a, const Vec3& b, double box) {
    double best = 1e300;
    for (int i = -1; i <= 1; i++)
        for (int j = -1; j <= 1; j++)
            for (int k = -1; k <= 1; k++) {
                Vec3 d = a - b + Vec3(i, j, k) * box;
                best = std::min(best, std::sqrt(d.dot(d)));
            }
    return best;
}

/// The molecules with an atom within RADIUS of an atom of `central`.
std::set<int> expectedMolecules(const Simulation& sim, int frame, const std::vector<int>& central) {
    std::set<int> taken;
    const std::vector<Vec3>& x = sim.frames[frame];
    for (size_t m = 0; m < sim.molecules.size(); m++)
        for (int i : sim.molecules[m])
            for (int c : central)
                if (imageDistance(x[i], x[c], sim.boxes[frame]) <= RADIUS)
                    taken.insert(static_cast<int>(m));
    return taken;
}

/// The global atom of each carved atom: the one whose frame position differs by whole box vectors.
std::vector<int> globalAtoms(const Simulation& sim, int frame, const DatasetRecord& record) {
    std::vector<int> global;
    double box = sim.boxes[frame];
    for (int a = 0; a < record.numAtoms(); a++) {
        int match = -1, matches = 0;
        for (int i = 0; i < sim.system.getNumParticles(); i++) {
            bool same = true;
            for (int k = 0; k < 3 && same; k++) {
                double cells = (record.positionsNm[3 * a + k] - sim.frames[frame][i][k]) / box;
                same = std::abs(cells - std::round(cells)) < 1e-5;
            }
            if (same) {
                match = i;
                matches++;
            }
        }
        EXPECT_EQ(matches, 1) << "carved atom " << a << " of " << record.key;
        global.push_back(match);
    }
    return global;
}

struct Reference {
    double totalEnergy, interactionEnergy;
    std::vector<Vec3> totalForces, interactionForces;
};

Reference recompute(const Simulation& sim, int frame) {
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(sim.system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    double b = sim.boxes[frame];
    context.setPeriodicBoxVectors(Vec3(b, 0, 0), Vec3(0, b, 0), Vec3(0, 0, b));
    context.setPositions(sim.frames[frame]);
    OpenMM::State total = context.getState(OpenMM::State::Energy | OpenMM::State::Forces);
    OpenMM::State part = context.getState(OpenMM::State::Energy | OpenMM::State::Forces, false, 1 << 1);
    return {total.getPotentialEnergy(), part.getPotentialEnergy(), total.getForces(), part.getForces()};
}

void expectForce(const float* stored, const Vec3& expected, double tolerance, const std::string& what) {
    for (int k = 0; k < 3; k++)
        EXPECT_NEAR(stored[k], expected[k], tolerance * (10 * std::abs(expected[k]) + 1000))
            << what << " component " << k;
}

/// What the checked records exercised (so that the test is known to have teeth).
struct Coverage {
    int partners = 0, brokenMolecules = 0, shiftedAtoms = 0, sodiumAtoms = 0;
};

/// Every check of one carved record against the simulation.
void checkRecord(Coverage& coverage, const Simulation& sim, int frame, const std::vector<int>& central,
                 const DatasetRecord& record, const Reference& reference, bool interaction, double tolerance = 1e-6) {
    SCOPED_TRACE(record.key);
    ASSERT_EQ(record.numFrames(), 1);
    std::vector<int> global = globalAtoms(sim, frame, record);
    if (::testing::Test::HasFailure())
        return;

    // Exactly the molecules within the radius, whole molecules, central molecule first.
    std::set<int> expected = expectedMolecules(sim, frame, central), carved;
    for (int i : global)
        carved.insert(sim.moleculeOf[i]);
    EXPECT_EQ(carved, expected);
    size_t expectedAtoms = 0;
    for (int m : expected)
        expectedAtoms += sim.molecules[m].size();
    EXPECT_EQ(static_cast<size_t>(record.numAtoms()), expectedAtoms);
    EXPECT_EQ(record.centralMolecule, 0);
    EXPECT_EQ(sim.moleculeOf[global[0]], sim.moleculeOf[central[0]]);
    ASSERT_EQ(record.numMolecules(), static_cast<int>(expected.size()));
    for (int m = 0; m < record.numMolecules(); m++) {
        EXPECT_EQ(record.isCentral[m], m == 0 ? 1 : 0);
        EXPECT_EQ(record.smiles[m], "");
    }
    coverage.partners += record.numMolecules() - 1;
    for (int a = 0; a < record.numAtoms(); a++) {
        int i = global[a];
        EXPECT_EQ(record.atomicNumbers[a], sim.elements[i]) << "atom " << a; // Na from its mass
        coverage.sodiumAtoms += sim.elements[i] == 11 ? 1 : 0;
        for (int k = 0; k < 3; k++)
            if (std::abs(record.positionsNm[3 * a + k] - sim.frames[frame][i][k]) > 0.5 * sim.boxes[frame]) {
                coverage.shiftedAtoms++;
                break;
            }
        EXPECT_EQ(record.formalCharges[a], 0);
        EXPECT_EQ(record.anchor[a], -1);
        int m = record.moleculeIndex[a];
        EXPECT_EQ(record.moleculeNames[m], sim.residueNames[i]);
        for (int b = 0; b < record.numAtoms(); b++) // same local molecule <=> same molecule
            EXPECT_EQ(record.moleculeIndex[b] == m, sim.moleculeOf[global[b]] == sim.moleculeOf[i]);
        for (int k = 0; k < 3; k++)
            EXPECT_EQ(record.direction3DMRL[3 * a + k], 0.0f);
    }

    // Positions: the central molecule's first atom where the frame has it, molecules whole (bonded atoms
    // close without any image), each partner at its minimum image (an atom within the radius directly).
    auto position = [&](int a) {
        return Vec3(record.positionsNm[3 * a], record.positionsNm[3 * a + 1], record.positionsNm[3 * a + 2]);
    };
    for (int k = 0; k < 3; k++)
        EXPECT_NEAR(record.positionsNm[k], sim.frames[frame][global[0]][k], 1e-6);
    std::map<int, int> local;
    for (int a = 0; a < record.numAtoms(); a++)
        local[global[a]] = a;
    for (const std::vector<int>& molecule : sim.molecules)
        for (int i : molecule)
            for (int j : molecule)
                if (local.count(i) && local.count(j) && i < j) {
                    Vec3 d = position(local[i]) - position(local[j]);
                    EXPECT_LT(std::sqrt(d.dot(d)), 0.3) << "molecule not whole: atoms " << i << ", " << j;
                    Vec3 raw = sim.frames[frame][i] - sim.frames[frame][j];
                    coverage.brokenMolecules += std::sqrt(raw.dot(raw)) > 0.3 ? 1 : 0;
                }
    for (int m : expected) {
        double closest = 1e300;
        for (int i : sim.molecules[m])
            for (int c : central) {
                Vec3 d = position(local[i]) - position(local[c]);
                closest = std::min(closest, std::sqrt(d.dot(d)));
            }
        if (m != sim.moleculeOf[central[0]]) {
            EXPECT_LE(closest, RADIUS + 1e-5) << "molecule " << m << " not at its minimum image";
        }
    }

    // Bonds: the chemical ones within the carved atoms (no H-H of rigid water), order 0.
    std::set<std::pair<int, int>> bonds, expectedBonds;
    for (size_t b = 0; b < record.bonds.size(); b++) {
        int i = global[record.bonds[b][0]], j = global[record.bonds[b][1]];
        bonds.insert({std::min(i, j), std::max(i, j)});
        EXPECT_EQ(record.bondOrders[b], 0.0f);
    }
    for (auto [i, j] : sim.chemicalBonds)
        if (local.count(i) && local.count(j))
            expectedBonds.insert({i, j});
    EXPECT_EQ(bonds, expectedBonds);
    EXPECT_EQ(bonds.size(), record.bonds.size());

    // Frame data.
    double b = sim.boxes[frame];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++)
            EXPECT_FLOAT_EQ(record.boxNm[3 * r + k], r == k ? b : 0.0);
    EXPECT_NEAR(record.timePs[0], (100 + 50 * frame) * 0.002, 1e-9);
    EXPECT_NEAR(record.totalEnergyKJPerMol[0], reference.totalEnergy,
                tolerance * (std::abs(reference.totalEnergy) + 1));
    if (interaction)
        EXPECT_NEAR(record.interactionEnergyKJPerMol[0], reference.interactionEnergy,
                    tolerance * (std::abs(reference.interactionEnergy) + 1));
    else
        EXPECT_TRUE(std::isnan(record.interactionEnergyKJPerMol[0]));
    for (int a = 0; a < record.numAtoms(); a++) {
        expectForce(&record.totalForcesKJPerMolNm[3 * a], reference.totalForces[global[a]], tolerance, "total force");
        if (interaction)
            expectForce(&record.interactionForcesKJPerMolNm[3 * a], reference.interactionForces[global[a]], tolerance,
                        "interaction force");
        else
            for (int k = 0; k < 3; k++)
                EXPECT_TRUE(std::isnan(record.interactionForcesKJPerMolNm[3 * a + k]));
    }
}

std::vector<int> ligandAtoms(const Simulation& sim, int ligand) {
    return sim.molecules[ligand]; // the ligands are molecules 0 and 1
}

} // namespace

TEST_F(CarveTest, CarveRecordsMatchRecomputedForcesAndBruteForceRadius) {
    Simulation sim = makeSimulation(3);
    writeInputs(sim);
    ASSERT_EQ(envgen(carveArgs("carved.h5", "--central-resname LIG --interaction-groups 1 --radius 0.5")), 0) << err;
    EXPECT_NE(out.find("\"records\": 6"), std::string::npos) << out;
    EXPECT_NE(out.find("atoms_per_record"), std::string::npos) << out;

    DatasetReader reader(path("carved.h5"));
    const DatasetAttributes& attributes = reader.getAttributes();
    EXPECT_EQ(attributes.forceField, "user System");
    EXPECT_EQ(attributes.interactionForces, "force_groups:1");
    EXPECT_NE(attributes.commandLine.find("carve"), std::string::npos);
    EXPECT_NE(attributes.optionsJson.find("\"central_resname\":\"LIG\""), std::string::npos) << attributes.optionsJson;
    EXPECT_NEAR(attributes.timestepPs, 0.002, 1e-12);
    ASSERT_EQ(reader.getNumRecords(), 6);
    Coverage coverage;
    for (int frame = 0; frame < 3; frame++) {
        Reference reference = recompute(sim, frame);
        for (int c = 0; c < 2; c++) {
            char key[32];
            std::snprintf(key, sizeof(key), "f%06d/m%04d", frame, c);
            int r = static_cast<int>(std::find(reader.getKeys().begin(), reader.getKeys().end(), key) -
                                     reader.getKeys().begin());
            ASSERT_LT(r, reader.getNumRecords()) << "no record " << key;
            DatasetRecord record = reader.getRecord(r);
            EXPECT_EQ(record.pairId, "LIG");
            EXPECT_EQ(record.weight, 1.0);
            checkRecord(coverage, sim, frame, ligandAtoms(sim, c), record, reference, true);
        }
    }
    // The test has teeth: environments are not empty, molecules broken by the box were made whole, partners
    // were moved to their minimum image, and ions without a PDB element were carved.
    EXPECT_GT(coverage.partners, 6);
    EXPECT_GT(coverage.brokenMolecules, 0);
    EXPECT_GT(coverage.shiftedAtoms, 0);
    EXPECT_GT(coverage.sodiumAtoms, 0);
}

TEST_F(CarveTest, CarveResumesAddingOnlyNewKeys) {
    Simulation sim = makeSimulation(3);
    writeInputs(sim);
    std::string args = "--central-resname LIG --interaction-groups 1";
    ASSERT_EQ(envgen(carveArgs("carved.h5", args + " --frames 0:2")), 0) << err;
    EXPECT_EQ(DatasetReader(path("carved.h5")).getNumRecords(), 4);
    ASSERT_EQ(envgen(carveArgs("carved.h5", args)), 0) << err;
    EXPECT_NE(out.find("\"records\": 2"), std::string::npos) << out;
    EXPECT_NE(out.find("\"records_already_present\": 4"), std::string::npos) << out;
    ASSERT_EQ(envgen(carveArgs("carved.h5", args)), 0) << err;
    EXPECT_NE(out.find("\"records\": 0"), std::string::npos) << out;
    DatasetReader reader(path("carved.h5"));
    EXPECT_EQ(reader.getNumRecords(), 6);
    std::set<std::string> keys(reader.getKeys().begin(), reader.getKeys().end());
    EXPECT_EQ(keys.size(), 6u);

    // Different content options are refused, --overwrite starts again.
    EXPECT_NE(envgen(carveArgs("carved.h5", args + " --radius 0.4")), 0);
    ASSERT_EQ(envgen(carveArgs("carved.h5", args + " --radius 0.4 --frames 1 --overwrite")), 0) << err;
    DatasetReader again(path("carved.h5"));
    ASSERT_EQ(again.getNumRecords(), 2);
    EXPECT_EQ(again.getKeys()[0].substr(0, 7), "f000001");
}

TEST_F(CarveTest, CarveStatesWithCentralAtomsAndNoInteractionGroups) {
    Simulation sim = makeSimulation(2);
    writeSystem(path("system.xml"), sim.system);
    writePdb(path("top.pdb"), sim);
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(sim.system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    std::string states;
    for (int f = 0; f < 2; f++) {
        double b = sim.boxes[f];
        context.setPeriodicBoxVectors(Vec3(b, 0, 0), Vec3(0, b, 0), Vec3(0, 0, b));
        context.setPositions(sim.frames[f]);
        context.setTime((100 + 50 * f) * 0.002);
        OpenMM::State state = context.getState(OpenMM::State::Positions);
        std::ofstream file(path("state" + std::to_string(f) + ".xml"));
        OpenMM::XmlSerializer::serialize<OpenMM::State>(&state, "State", file);
        states += " '" + path("state" + std::to_string(f) + ".xml") + "'";
    }
    std::string args = "carve --system '" + path("system.xml") + "' --topology '" + path("top.pdb") + "' --states" +
                       states + " --central-atoms 4-7 --output '" + path("states.h5") + "' --no-progress";
    ASSERT_EQ(envgen(args), 0) << err;
    DatasetReader reader(path("states.h5"));
    EXPECT_EQ(reader.getAttributes().interactionForces, "none");
    ASSERT_EQ(reader.getNumRecords(), 2);
    for (int f = 0; f < 2; f++) {
        DatasetRecord record = reader.getRecord(f);
        EXPECT_EQ(record.key, "f00000" + std::to_string(f) + "/m0000");
        EXPECT_EQ(record.pairId, "atoms");
        Coverage coverage;
        checkRecord(coverage, sim, f, {4, 5, 6, 7}, record, recompute(sim, f), false);
    }
}

TEST_F(CarveTest, CarveReadsBigEndianDcdLikeLittleEndian) {
    Simulation sim = makeSimulation(2);
    writeInputs(sim);
    writeDcd(path("big.dcd"), sim, true);
    std::string args = "--central-resname LIG --interaction-groups 1 --platform CPU";
    ASSERT_EQ(envgen(carveArgs("little.h5", args)), 0) << err;
    std::string big = "carve --system '" + path("system.xml") + "' --topology '" + path("top.pdb") +
                      "' --trajectory '" + path("big.dcd") + "' --output '" + path("big.h5") + "' --no-progress " +
                      args;
    ASSERT_EQ(envgen(big), 0) << err;
    DatasetReader little(path("little.h5")), bigReader(path("big.h5"));
    ASSERT_EQ(little.getNumRecords(), 4);
    ASSERT_EQ(bigReader.getNumRecords(), 4);
    for (int r = 0; r < 4; r++) {
        DatasetRecord a = little.getRecord(r), b = bigReader.getRecord(r);
        EXPECT_EQ(a.key, b.key);
        EXPECT_EQ(a.positionsNm, b.positionsNm);
        EXPECT_EQ(a.boxNm, b.boxNm);
        EXPECT_EQ(a.totalEnergyKJPerMol, b.totalEnergyKJPerMol);
    }
    // The CPU platform (single precision nonbonded) gives the Reference numbers to within its precision.
    Reference reference = recompute(sim, 1);
    DatasetRecord record = little.getRecord(2);
    EXPECT_EQ(record.key, "f000001/m0000");
    Coverage coverage;
    checkRecord(coverage, sim, 1, ligandAtoms(sim, 0), record, reference, true, 1e-4);
}

TEST_F(CarveTest, CarveErrorsNameTheProblem) {
    Simulation sim = makeSimulation(2);
    writeInputs(sim);
    std::string lig = "--central-resname LIG";

    writePdb(path("short.pdb"), sim, 1);
    std::string shortPdb = "carve --system '" + path("system.xml") + "' --topology '" + path("short.pdb") +
                           "' --trajectory '" + path("traj.dcd") + "' --output '" + path("x.h5") + "' " + lig;
    EXPECT_NE(envgen(shortPdb), 0);
    EXPECT_NE(err.find("--topology " + path("short.pdb")), std::string::npos) << err;
    EXPECT_NE(err.find("atoms"), std::string::npos) << err;
    EXPECT_NE(err.find("particles"), std::string::npos) << err;

    // A copy of the trajectory cut short: fewer frames than its header counts.
    std::string dcd = slurp(path("traj.dcd"));
    std::ofstream(path("cut.dcd"), std::ios::binary).write(dcd.data(), static_cast<std::streamsize>(dcd.size() / 2));
    std::string cut = "carve --system '" + path("system.xml") + "' --topology '" + path("top.pdb") +
                      "' --trajectory '" + path("cut.dcd") + "' --output '" + path("x.h5") + "' " + lig;
    EXPECT_EQ(envgen(cut), 1);
    EXPECT_NE(err.find("--trajectory " + path("cut.dcd")), std::string::npos) << err;
    EXPECT_NE(err.find("cut short"), std::string::npos) << err;

    std::string missing = "carve --system '" + path("nothere.xml") + "' --topology '" + path("top.pdb") +
                          "' --trajectory '" + path("traj.dcd") + "' --output '" + path("x.h5") + "' " + lig;
    EXPECT_NE(envgen(missing), 0);
    EXPECT_NE(err.find("nothere.xml"), std::string::npos) << err;
    EXPECT_NE(err.find("No such file"), std::string::npos) << err;

    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --platform Quantum")), 0);
    EXPECT_NE(err.find("Quantum"), std::string::npos) << err;
    EXPECT_NE(err.find("Reference"), std::string::npos) << err; // the available ones are listed

    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --frames 0:5:0")), 0);
    EXPECT_NE(err.find("--frames"), std::string::npos) << err;
    EXPECT_NE(err.find("stride"), std::string::npos) << err;
    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --frames 7")), 0);
    EXPECT_NE(err.find("out of range"), std::string::npos) << err;
    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --frames a:b")), 0);
    EXPECT_NE(err.find("not an integer"), std::string::npos) << err;

    EXPECT_NE(envgen(carveArgs("x.h5", "--central-resname XYZ")), 0);
    EXPECT_NE(err.find("XYZ"), std::string::npos) << err;
    EXPECT_NE(err.find("HOH"), std::string::npos) << err; // the names that exist
    EXPECT_NE(envgen(carveArgs("x.h5", "")), 0);
    EXPECT_NE(err.find("--central-resname"), std::string::npos) << err;
    EXPECT_NE(envgen(carveArgs("x.h5", "--central-atoms 0-999")), 0);
    EXPECT_NE(err.find("out of range"), std::string::npos) << err;
    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --interaction-groups 5")), 0);
    EXPECT_NE(err.find("no force"), std::string::npos) << err;
    EXPECT_NE(envgen(carveArgs("x.h5", lig + " --radius 1.2")), 0);
    EXPECT_NE(err.find("half the periodic box"), std::string::npos) << err;

    std::ofstream(path("junk.dcd")) << "this is not a DCD file at all, just text";
    std::string junk = "carve --system '" + path("system.xml") + "' --topology '" + path("top.pdb") +
                       "' --trajectory '" + path("junk.dcd") + "' --output '" + path("x.h5") + "' " + lig;
    EXPECT_NE(envgen(junk), 0);
    EXPECT_NE(err.find("not a DCD file"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(path("x.h5"))); // nothing written by any failed run
}

// ---- export -------------------------------------------------------------------------------------

namespace {

struct XyzFrame {
    std::map<std::string, std::string> info;
    std::vector<std::string> species;
    std::vector<std::vector<double>> columns; // per atom: the numbers after the species
};

/// key=value pairs of an extended XYZ comment line (values double-quoted or bare).
std::map<std::string, std::string> parseComment(const std::string& line) {
    std::map<std::string, std::string> info;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ')
            i++;
        size_t equals = line.find('=', i);
        if (equals == std::string::npos)
            break;
        std::string key = line.substr(i, equals - i), value;
        i = equals + 1;
        if (i < line.size() && line[i] == '"') {
            for (i++; i < line.size() && line[i] != '"'; i++) {
                if (line[i] == '\\')
                    i++;
                value += line[i];
            }
            i++;
        } else
            while (i < line.size() && line[i] != ' ')
                value += line[i++];
        info[key] = value;
    }
    return info;
}

std::vector<XyzFrame> readXyz(const std::string& path) {
    std::ifstream in(path);
    std::vector<XyzFrame> frames;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        int n = std::stoi(line);
        XyzFrame frame;
        std::getline(in, line);
        frame.info = parseComment(line);
        for (int a = 0; a < n; a++) {
            std::getline(in, line);
            std::istringstream fields(line);
            std::string species;
            fields >> species;
            frame.species.push_back(species);
            std::vector<double> values;
            std::string value;
            while (fields >> value)
                values.push_back(std::stod(value));
            frame.columns.push_back(values);
        }
        frames.push_back(frame);
    }
    return frames;
}

} // namespace

TEST_F(CarveTest, ExportRoundTripsTheDatasetInAseUnits) {
    Simulation sim = makeSimulation(2);
    writeInputs(sim);
    ASSERT_EQ(envgen(carveArgs("carved.h5", "--central-resname LIG --interaction-groups 1")), 0) << err;
    ASSERT_EQ(envgen("export '" + path("carved.h5") + "' --output '" + path("carved.extxyz") + "' --no-progress"), 0)
        << err;
    EXPECT_FALSE(fs::exists(path("carved.extxyz.tmp")));
    EXPECT_NE(out.find("\"frames\": 4"), std::string::npos) << out;
    DatasetReader reader(path("carved.h5"));
    std::vector<XyzFrame> frames = readXyz(path("carved.extxyz"));
    ASSERT_EQ(frames.size(), 4u);
    const char* symbols[] = {"X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na"};
    for (int r = 0; r < 4; r++) {
        DatasetRecord record = reader.getRecord(r);
        const XyzFrame& frame = frames[r];
        SCOPED_TRACE(record.key);
        EXPECT_EQ(frame.info.at("key"), record.key);
        EXPECT_EQ(frame.info.at("pair_id"), "LIG");
        EXPECT_EQ(frame.info.at("pbc"), "T T T");
        EXPECT_EQ(frame.info.at("units"), "energy:eV length:Angstrom forces:eV/Angstrom");
        EXPECT_EQ(frame.info.at("Properties"), "species:S:1:pos:R:3:forces:R:3:interaction_forces:R:3:molecule:I:1");
        EXPECT_NEAR(std::stod(frame.info.at("energy")) * EV, record.totalEnergyKJPerMol[0],
                    1e-8 * std::abs(record.totalEnergyKJPerMol[0]));
        EXPECT_NEAR(std::stod(frame.info.at("interaction_energy")) * EV, record.interactionEnergyKJPerMol[0],
                    1e-8 * std::abs(record.interactionEnergyKJPerMol[0]));
        EXPECT_NEAR(std::stod(frame.info.at("time_ps")), record.timePs[0], 1e-9);
        std::istringstream lattice(frame.info.at("Lattice"));
        for (int k = 0; k < 9; k++) {
            double value;
            lattice >> value;
            EXPECT_NEAR(value / 10, record.boxNm[k], 1e-6);
        }
        ASSERT_EQ(static_cast<int>(frame.species.size()), record.numAtoms());
        for (int a = 0; a < record.numAtoms(); a++) {
            EXPECT_EQ(frame.species[a], symbols[record.atomicNumbers[a]]);
            const std::vector<double>& v = frame.columns[a];
            ASSERT_EQ(v.size(), 10u);
            for (int k = 0; k < 3; k++) {
                EXPECT_NEAR(v[k] / 10, record.positionsNm[3 * a + k], 1e-6);
                float total = record.totalForcesKJPerMolNm[3 * a + k];
                float part = record.interactionForcesKJPerMolNm[3 * a + k];
                EXPECT_NEAR(v[3 + k] * 10 * EV, total, 1e-6 * std::abs(total) + 1e-6);
                EXPECT_NEAR(v[6 + k] * 10 * EV, part, 1e-6 * std::abs(part) + 1e-6);
            }
            EXPECT_EQ(static_cast<int>(v[9]), record.moleculeIndex[a]);
        }
    }

    // --forces interaction puts the interaction forces first; --records selects.
    ASSERT_EQ(envgen("export '" + path("carved.h5") + "' --output '" + path("part.extxyz") +
                     "' --forces interaction --records 1:3 --no-progress"),
              0)
        << err;
    frames = readXyz(path("part.extxyz"));
    ASSERT_EQ(frames.size(), 2u);
    DatasetRecord record = reader.getRecord(1);
    EXPECT_EQ(frames[0].info.at("key"), record.key);
    EXPECT_EQ(frames[0].info.at("Properties"), "species:S:1:pos:R:3:forces:R:3:total_forces:R:3:molecule:I:1");
    EXPECT_NEAR(std::stod(frames[0].info.at("energy")) * EV, record.interactionEnergyKJPerMol[0],
                1e-8 * std::abs(record.interactionEnergyKJPerMol[0]));
    for (int k = 0; k < 3; k++)
        EXPECT_NEAR(frames[0].columns[0][3 + k] * 10 * EV, record.interactionForcesKJPerMolNm[k],
                    1e-6 * std::abs(record.interactionForcesKJPerMolNm[k]) + 1e-6);
}

TEST_F(CarveTest, ExportErrorsNameTheProblem) {
    Simulation sim = makeSimulation(1);
    writeInputs(sim);
    ASSERT_EQ(envgen(carveArgs("none.h5", "--central-resname LIG")), 0) << err;
    EXPECT_NE(envgen("export '" + path("none.h5") + "' --output '" + path("x.extxyz") + "' --forces interaction"), 0);
    EXPECT_NE(err.find("no interaction forces"), std::string::npos) << err;
    EXPECT_NE(envgen("export '" + path("none.h5") + "' --output '" + path("x.extxyz") + "' --forces both"), 0);
    EXPECT_NE(err.find("--forces"), std::string::npos) << err;
    EXPECT_NE(envgen("export '" + path("none.h5") + "' --output '" + path("x.extxyz") + "' --records 5:"), 0);
    EXPECT_NE(err.find("--records"), std::string::npos) << err;
    EXPECT_NE(envgen("export '" + path("missing.h5") + "' --output '" + path("x.extxyz") + "'"), 0);
    EXPECT_NE(err.find("missing.h5"), std::string::npos) << err;
    EXPECT_NE(envgen("export '" + path("none.h5") + "' --output '" + path("no/such/dir/x.extxyz") + "'"), 0);
    EXPECT_NE(err.find("no/such/dir"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(path("x.extxyz")));

    // Without interaction forces the column is left out.
    ASSERT_EQ(envgen("export '" + path("none.h5") + "' --output '" + path("x.extxyz") + "' --no-progress"), 0) << err;
    std::vector<XyzFrame> frames = readXyz(path("x.extxyz"));
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].info.at("Properties"), "species:S:1:pos:R:3:forces:R:3:molecule:I:1");
    EXPECT_EQ(frames[0].info.count("interaction_energy"), 0u);
    EXPECT_EQ(frames[0].columns[0].size(), 7u);
}
