// SPDX-License-Identifier: MIT
// The readers of a user's simulation files (MRLReaders.h) on real files written here: a PDB, DCDs written
// byte by byte per OpenMM's dcdfile.py, State and System XML written by OpenMM's XmlSerializer.  Numbers are
// checked against the values written; every bad input must name the file and the problem.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "DcdTestFile.h"
#include "MRLReaders.h"
#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/serialization/XmlSerializer.h"

using namespace MRLPlugin;
using OpenMM::Vec3;
namespace fs = std::filesystem;

namespace {

/// A fresh directory per test (tests may run in parallel processes).
class ReaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir = fs::temp_directory_path() /
              ("mrl-readers-" + std::string(info->name()) + "-" + std::to_string(static_cast<long>(getpid())));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
    std::string path(const std::string& name) const { return (dir / name).string(); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(path(name)) << text; }
    fs::path dir;
};

/// The message of the OpenMMException that `read` throws ("" when it throws none).
template <class Read> std::string errorOf(Read read) {
    try {
        read();
    } catch (const OpenMM::OpenMMException& e) {
        return e.what();
    }
    return "";
}

/// Two frames of three atoms at positions that float32 Angstrom holds exactly (nm).
std::vector<std::vector<Vec3>> threeAtomFrames() {
    return {{Vec3(0.125, 0.25, 0.5), Vec3(1.0, 1.5, 0.75), Vec3(-0.25, 2.0, 0.0625)},
            {Vec3(0.375, 0.25, 0.5), Vec3(1.0, -1.5, 0.75), Vec3(0.25, 2.125, 1.0)}};
}

void expectFrame(const TrajectoryFrame& frame, const std::vector<Vec3>& expected) {
    ASSERT_EQ(frame.positions.size(), expected.size());
    for (size_t i = 0; i < expected.size(); i++)
        for (int k = 0; k < 3; k++)
            EXPECT_DOUBLE_EQ(frame.positions[i][k], expected[i][k]) << "atom " << i << " component " << k;
}

double length(const Vec3& v) {
    return std::sqrt(v.dot(v));
}

} // namespace

// ---- PDB ------------------------------------------------------------------------------------------

TEST_F(ReaderTest, PdbGivesNamesResiduesAndElementsOfTheFirstModel) {
    write("top.pdb", "REMARK   written by hand\n"
                     "CRYST1   18.000   18.000   18.000  90.00  90.00  90.00 P 1           1\n"
                     "HETATM    1  C1  LIG A   1       1.000   2.000   3.000  1.00  0.00           C\n"
                     "HETATM    2 CL1  LIG A   1       1.500   2.000   3.000  1.00  0.00          CL\n"
                     "HETATM    3  O   HOH A   2       4.000   2.000   3.000  1.00  0.00           O\n"
                     "HETATM    4  H1  HOH A   2       4.500   2.000   3.000  1.00  0.00\n"
                     "TER       5      HOH A   2\n"
                     "HETATM    6  O   HOH A   2       7.000   2.000   3.000  1.00  0.00           O\n"
                     "ATOM      7 NA   NA  B   3       9.000   2.000   3.000  1.00  0.00          NA\n"
                     "ATOM      8  XX  UNK B   4       9.000   2.000   3.000  1.00  0.00          Xx\n"
                     "ENDMDL\n"
                     "HETATM    9  C1  LIG A   1       1.000   2.000   3.000  1.00  0.00           C\n"
                     "END\n");
    PdbTopology pdb = readPdb(path("top.pdb"), "--topology");
    ASSERT_EQ(pdb.atoms.size(), 7u); // the second model is not read
    EXPECT_EQ(pdb.numResidues, 5);   // TER starts a new residue even with the same number
    const char* names[] = {"C1", "CL1", "O", "H1", "O", "NA", "XX"};
    const char* residueNames[] = {"LIG", "LIG", "HOH", "HOH", "HOH", "NA", "UNK"};
    int residues[] = {0, 0, 1, 1, 2, 3, 4};
    int elements[] = {6, 17, 8, -1, 8, 11, -1};
    for (int i = 0; i < 7; i++) {
        EXPECT_EQ(pdb.atoms[i].name, names[i]) << "atom " << i;
        EXPECT_EQ(pdb.atoms[i].residueName, residueNames[i]) << "atom " << i;
        EXPECT_EQ(pdb.atoms[i].residue, residues[i]) << "atom " << i;
        EXPECT_EQ(pdb.atoms[i].element, elements[i]) << "atom " << i;
    }
}

TEST_F(ReaderTest, PdbErrorsNameTheFileAndTheProblem) {
    std::string message = errorOf([&] { readPdb(path("nothere.pdb"), "--topology"); });
    EXPECT_NE(message.find("--topology PDB file"), std::string::npos) << message;
    EXPECT_NE(message.find("nothere.pdb"), std::string::npos) << message;
    EXPECT_NE(message.find("No such file"), std::string::npos) << message;

    write("short.pdb", "HETATM    1  C1  LIG A   1       1.000   2.000   3.000  1.00  0.00           C\n"
                       "HETATM    2  C2  LIG\n");
    message = errorOf([&] { readPdb(path("short.pdb"), "--topology"); });
    EXPECT_NE(message.find("short.pdb line 2"), std::string::npos) << message;
    EXPECT_NE(message.find("shorter than 27 columns"), std::string::npos) << message;

    write("empty.pdb", "REMARK nothing here\nEND\n");
    message = errorOf([&] { readPdb(path("empty.pdb"), "--topology"); });
    EXPECT_NE(message.find("empty.pdb"), std::string::npos) << message;
    EXPECT_NE(message.find("no ATOM or HETATM records"), std::string::npos) << message;
}

// ---- DCD ------------------------------------------------------------------------------------------

TEST_F(ReaderTest, DcdGivesPositionsBoxesAndTimesInEitherByteOrder) {
    std::vector<std::vector<Vec3>> frames = threeAtomFrames();
    std::vector<MRLTest::DcdCell> cells = {{20.0, 0.0, 25.0, 0.0, 0.0, 30.0}, {21.0, 0.0, 26.0, 0.0, 0.0, 31.0}};
    for (bool bigEndian : {false, true}) {
        SCOPED_TRACE(bigEndian ? "big endian" : "little endian");
        MRLTest::writeDcdFile(path("traj.dcd"), frames, cells, 1000, 250, 0.004, bigEndian);
        DcdReader dcd(path("traj.dcd"), "--trajectory");
        EXPECT_EQ(dcd.getNumAtoms(), 3);
        EXPECT_EQ(dcd.getNumFrames(), 2);
        EXPECT_EQ(dcd.getIncompleteBytes(), 0);
        EXPECT_TRUE(dcd.hasUnitCell());
        EXPECT_DOUBLE_EQ(dcd.getTimestepPs(), 0.004); // stored as a float in AKMA units, rounded back
        for (int f = 1; f >= 0; f--) {                // any order
            TrajectoryFrame frame;
            dcd.read(f, frame);
            expectFrame(frame, frames[f]);
            ASSERT_TRUE(frame.hasBox);
            double edges[3] = {cells[f][0] / 10, cells[f][2] / 10, cells[f][5] / 10};
            for (int a = 0; a < 3; a++)
                for (int k = 0; k < 3; k++)
                    EXPECT_NEAR(frame.box[a][k], a == k ? edges[a] : 0.0, 1e-12);
            EXPECT_NEAR(frame.timePs, (1000 + 250 * f) * 0.004, 1e-12);
        }
    }
}

TEST_F(ReaderTest, DcdTriclinicCellGivesEdgesAndAnglesFromCosinesOrDegrees) {
    // a = 3 nm, b = 3.2 nm, c = 3.5 nm; alpha 80 degrees, beta 75, gamma 85 (OpenMM writes the cosines).
    double alpha = 80 * M_PI / 180, beta = 75 * M_PI / 180, gamma = 85 * M_PI / 180;
    std::vector<MRLTest::DcdCell> cells = {{30.0, std::cos(gamma), 32.0, std::cos(beta), std::cos(alpha), 35.0},
                                           {30.0, 85.0, 32.0, 75.0, 80.0, 35.0}};
    std::vector<std::vector<Vec3>> frames = threeAtomFrames();
    MRLTest::writeDcdFile(path("triclinic.dcd"), frames, cells);
    DcdReader dcd(path("triclinic.dcd"), "--trajectory");
    for (int f = 0; f < 2; f++) {
        SCOPED_TRACE(f == 0 ? "cosines" : "degrees");
        TrajectoryFrame frame;
        dcd.read(f, frame);
        ASSERT_TRUE(frame.hasBox);
        const Vec3* box = frame.box;
        // OpenMM's reduced form: a along x, b in the xy plane, |a_x| >= 2|b_x|, b_y >= 2|c_y|, a_x >= 2|c_x|.
        EXPECT_EQ(box[0][1], 0.0);
        EXPECT_EQ(box[0][2], 0.0);
        EXPECT_EQ(box[1][2], 0.0);
        EXPECT_LE(2 * std::abs(box[1][0]), box[0][0]);
        EXPECT_LE(2 * std::abs(box[2][0]), box[0][0]);
        EXPECT_LE(2 * std::abs(box[2][1]), box[1][1]);
        // With these angles no reduction is needed: the vectors have the edges and angles written.
        EXPECT_NEAR(length(box[0]), 3.0, 1e-9);
        EXPECT_NEAR(length(box[1]), 3.2, 1e-9);
        EXPECT_NEAR(length(box[2]), 3.5, 1e-9);
        EXPECT_NEAR(box[1].dot(box[2]) / (3.2 * 3.5), std::cos(alpha), 1e-9);
        EXPECT_NEAR(box[0].dot(box[2]) / (3.0 * 3.5), std::cos(beta), 1e-9);
        EXPECT_NEAR(box[0].dot(box[1]) / (3.0 * 3.2), std::cos(gamma), 1e-9);
        // The volume a b c sqrt(1 - cos^2 a - cos^2 b - cos^2 g + 2 cos a cos b cos g).
        double ca = std::cos(alpha), cb = std::cos(beta), cg = std::cos(gamma);
        double volume = 3.0 * 3.2 * 3.5 * std::sqrt(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg);
        EXPECT_NEAR(box[0][0] * box[1][1] * box[2][2], volume, 1e-9);
    }
}

TEST_F(ReaderTest, DcdWithoutUnitCellHasNoBox) {
    MRLTest::writeDcdFile(path("nocell.dcd"), threeAtomFrames(), {});
    DcdReader dcd(path("nocell.dcd"), "--trajectory");
    EXPECT_FALSE(dcd.hasUnitCell());
    ASSERT_EQ(dcd.getNumFrames(), 2);
    TrajectoryFrame frame;
    dcd.read(1, frame);
    EXPECT_FALSE(frame.hasBox);
    expectFrame(frame, threeAtomFrames()[1]);
}

TEST_F(ReaderTest, DcdCountsOnlyCompleteFrames) {
    MRLTest::writeDcdFile(path("growing.dcd"), threeAtomFrames(), {{20, 0, 20, 0, 0, 20}, {20, 0, 20, 0, 0, 20}});
    std::ofstream(path("growing.dcd"), std::ios::binary | std::ios::app).write("0123456789", 10);
    DcdReader dcd(path("growing.dcd"), "--trajectory");
    EXPECT_EQ(dcd.getNumFrames(), 2);
    EXPECT_EQ(dcd.getIncompleteBytes(), 10);
    TrajectoryFrame frame;
    dcd.read(1, frame);
    expectFrame(frame, threeAtomFrames()[1]);
}

TEST_F(ReaderTest, DcdCutShortOfItsHeaderFrameCountIsRefused) {
    // The header counts 3 frames (DCDReporter updates the count after each frame); the copy holds 1 and a half.
    std::vector<std::vector<Vec3>> frames = threeAtomFrames();
    frames.push_back(frames[0]);
    MRLTest::writeDcdFile(path("whole.dcd"), frames, {});
    std::ifstream whole(path("whole.dcd"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(whole)), std::istreambuf_iterator<char>());
    size_t frameBytes = 3 * (8 + 4 * 3);
    std::ofstream(path("cut.dcd"), std::ios::binary).write(bytes.data(), bytes.size() - frameBytes - frameBytes / 2);
    std::string message = errorOf([&] { DcdReader(path("cut.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("--trajectory " + path("cut.dcd")), std::string::npos) << message;
    EXPECT_NE(message.find("header counts 3 frames but the file holds only 1 complete"), std::string::npos) << message;
    EXPECT_NE(message.find("cut short"), std::string::npos) << message;
}

TEST_F(ReaderTest, DcdErrorsNameTheFileAndTheProblem) {
    std::string message = errorOf([&] { DcdReader(path("nothere.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("--trajectory DCD file"), std::string::npos) << message;
    EXPECT_NE(message.find("nothere.dcd"), std::string::npos) << message;
    EXPECT_NE(message.find("No such file"), std::string::npos) << message;

    write("junk.dcd", "this is not a DCD file at all, just text");
    message = errorOf([&] { DcdReader(path("junk.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("--trajectory " + path("junk.dcd")), std::string::npos) << message;
    EXPECT_NE(message.find("not a DCD file"), std::string::npos) << message;

    write("tiny.dcd", "ab");
    message = errorOf([&] { DcdReader(path("tiny.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("shorter than a DCD header"), std::string::npos) << message;

    // Cut in the title record (the header record is 92 bytes, the title record 172).
    MRLTest::writeDcdFile(path("whole.dcd"), threeAtomFrames(), {});
    std::ifstream whole(path("whole.dcd"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(whole)), std::istreambuf_iterator<char>());
    std::ofstream(path("cut.dcd"), std::ios::binary).write(bytes.data(), 150);
    message = errorOf([&] { DcdReader(path("cut.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("cut.dcd"), std::string::npos) << message;
    EXPECT_NE(message.find("truncated at the title record"), std::string::npos) << message;

    std::string velocities = bytes;
    velocities.replace(4, 4, "VELD");
    std::ofstream(path("velocities.dcd"), std::ios::binary).write(velocities.data(), velocities.size());
    message = errorOf([&] { DcdReader(path("velocities.dcd"), "--trajectory"); });
    EXPECT_NE(message.find("it holds velocities, not coordinates"), std::string::npos) << message;
}

// ---- State and System XML -------------------------------------------------------------------------

TEST_F(ReaderTest, StateFileGivesPositionsBoxAndTime) {
    OpenMM::System system;
    for (int i = 0; i < 3; i++)
        system.addParticle(12.0);
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    std::vector<Vec3> positions = threeAtomFrames()[0];
    Vec3 box[3] = {Vec3(2.5, 0, 0), Vec3(0.5, 2.4, 0), Vec3(-0.3, 0.7, 2.2)};
    context.setPositions(positions);
    context.setPeriodicBoxVectors(box[0], box[1], box[2]);
    context.setTime(12.5);
    OpenMM::State state = context.getState(OpenMM::State::Positions);
    std::ofstream file(path("state.xml"));
    OpenMM::XmlSerializer::serialize<OpenMM::State>(&state, "State", file);
    file.close();

    TrajectoryFrame frame = readStateFile(path("state.xml"), "--states");
    expectFrame(frame, positions);
    ASSERT_TRUE(frame.hasBox);
    for (int a = 0; a < 3; a++)
        for (int k = 0; k < 3; k++)
            EXPECT_DOUBLE_EQ(frame.box[a][k], box[a][k]);
    EXPECT_DOUBLE_EQ(frame.timePs, 12.5);
}

TEST_F(ReaderTest, StateFileErrorsNameTheFileAndTheProblem) {
    std::string message = errorOf([&] { readStateFile(path("nothere.xml"), "--states"); });
    EXPECT_NE(message.find("--states file"), std::string::npos) << message;
    EXPECT_NE(message.find("nothere.xml"), std::string::npos) << message;

    write("junk.xml", "<Nothing/>\n");
    message = errorOf([&] { readStateFile(path("junk.xml"), "--states"); });
    EXPECT_NE(message.find("junk.xml is not an OpenMM State XML file"), std::string::npos) << message;

    OpenMM::System system;
    system.addParticle(1.0);
    OpenMM::VerletIntegrator integrator(0.001);
    OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(0, 0, 0)});
    OpenMM::State energyOnly = context.getState(OpenMM::State::Energy);
    std::ofstream file(path("energy.xml"));
    OpenMM::XmlSerializer::serialize<OpenMM::State>(&energyOnly, "State", file);
    file.close();
    message = errorOf([&] { readStateFile(path("energy.xml"), "--states"); });
    EXPECT_NE(message.find("energy.xml holds no positions"), std::string::npos) << message;
}

TEST_F(ReaderTest, SystemFileRoundTripsParticlesAndConstraints) {
    OpenMM::System system;
    for (double mass : {15.999, 1.008, 1.008})
        system.addParticle(mass);
    system.addConstraint(0, 1, 0.09572);
    system.setDefaultPeriodicBoxVectors(Vec3(2, 0, 0), Vec3(0, 2, 0), Vec3(0, 0, 2));
    std::ofstream file(path("system.xml"));
    OpenMM::XmlSerializer::serialize<OpenMM::System>(&system, "System", file);
    file.close();

    std::unique_ptr<OpenMM::System> read = readSystemFile(path("system.xml"), "--system");
    ASSERT_EQ(read->getNumParticles(), 3);
    EXPECT_DOUBLE_EQ(read->getParticleMass(0), 15.999);
    EXPECT_DOUBLE_EQ(read->getParticleMass(2), 1.008);
    ASSERT_EQ(read->getNumConstraints(), 1);
    int i, j;
    double distance;
    read->getConstraintParameters(0, i, j, distance);
    EXPECT_EQ(i, 0);
    EXPECT_EQ(j, 1);
    EXPECT_DOUBLE_EQ(distance, 0.09572);

    std::string message = errorOf([&] { readSystemFile(path("nothere.xml"), "--system"); });
    EXPECT_NE(message.find("--system file"), std::string::npos) << message;
    EXPECT_NE(message.find("nothere.xml"), std::string::npos) << message;
    write("junk.xml", "not xml at all");
    message = errorOf([&] { readSystemFile(path("junk.xml"), "--system"); });
    EXPECT_NE(message.find("junk.xml is not an OpenMM System XML file"), std::string::npos) << message;
    // Cut inside a tag: OpenMM's parser reads past the end of such text (tests/fuzz found it); ours names it.
    write("cut.xml", "<?xml version=\"1.0\" ?>\n<System openmmVersion=\"8.6.1\" type=\"System\" versi");
    message = errorOf([&] { readSystemFile(path("cut.xml"), "--system"); });
    EXPECT_NE(message.find("not well-formed XML: an attribute without a value in the tag <System"), std::string::npos)
        << message;
}

TEST(XmlStructure, FindsWhatOpenMMsParserCannotTake) {
    EXPECT_EQ(findXmlStructureError("<?xml version=\"1.0\" ?>\n<A x=\"1\"><B y='2'/>text &amp; more</A>\n"), "");
    EXPECT_EQ(findXmlStructureError("<!-- c --><A/>"), "");
    for (const auto& [text, problem] :
         std::vector<std::pair<std::string, std::string>>{{"<A x=\"1\"", "an unterminated tag <A"},
                                                          {"<A x=\"1>", "an unterminated attribute value"},
                                                          {"<A x=1/>", "an unquoted attribute value"},
                                                          {"<A x=\"<\"/>", "a '<' inside an attribute value"},
                                                          {"<A><B></A>", "</A> closes <B>"},
                                                          {"<A>", "is not closed"},
                                                          {"<A/><B/>", "a second root element"},
                                                          {"<A/>junk", "text outside the root element"},
                                                          {std::string("<A/>\0", 5), "a NUL byte"},
                                                          {"<!DOCTYPE x><A/>", "a DOCTYPE"},
                                                          {"<A x=\"1\"y=\"2\"/>", "a malformed attribute"},
                                                          {"", "no element"}}) {
        std::string found = findXmlStructureError(text);
        EXPECT_NE(found.find(problem), std::string::npos) << "for \"" << text << "\": " << found;
    }
}
