// SPDX-License-Identifier: MIT
// The dataset writer and reader: round trips, the journal, resuming, and damage that must not spread.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "DatasetTestRecord.h"
#include "MRLDataset.h"
#include "openmm/OpenMMException.h"

using namespace MRLPlugin;
using MRLTest::makeRecord;
namespace fs = std::filesystem;

namespace {

void expectSameRecord(const DatasetRecord& a, const DatasetRecord& b) {
    EXPECT_EQ(a.key, b.key);
    EXPECT_EQ(a.pairId, b.pairId);
    EXPECT_EQ(a.weight, b.weight);
    EXPECT_EQ(a.atomicNumbers, b.atomicNumbers);
    EXPECT_EQ(a.formalCharges, b.formalCharges);
    EXPECT_EQ(a.moleculeIndex, b.moleculeIndex);
    EXPECT_EQ(a.anchor, b.anchor);
    EXPECT_EQ(a.smiles, b.smiles);
    EXPECT_EQ(a.moleculeNames, b.moleculeNames);
    EXPECT_EQ(a.isCentral, b.isCentral);
    EXPECT_EQ(a.bonds, b.bonds);
    EXPECT_EQ(a.bondOrders, b.bondOrders);
    EXPECT_EQ(a.timePs, b.timePs);
    EXPECT_EQ(a.totalEnergyKJPerMol, b.totalEnergyKJPerMol);
    EXPECT_EQ(a.interactionEnergyKJPerMol, b.interactionEnergyKJPerMol);
    EXPECT_EQ(a.boxNm, b.boxNm);
    EXPECT_EQ(a.positionsNm, b.positionsNm);
    EXPECT_EQ(a.totalForcesKJPerMolNm, b.totalForcesKJPerMolNm);
    EXPECT_EQ(a.interactionForcesKJPerMolNm, b.interactionForcesKJPerMolNm);
    EXPECT_EQ(a.direction3DMRL, b.direction3DMRL);
}

class DatasetTest : public ::testing::Test {
protected:
    void SetUp() override {
        directory = fs::temp_directory_path() /
                    ("mrl-dataset-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                     "-" + std::to_string(::getpid()));
        fs::remove_all(directory);
        fs::create_directories(directory);
        path = (directory / "data.h5").string();
        attributes.optionsJson = "{\"seed\":1}";
        attributes.commandLine = "test";
    }
    void TearDown() override { fs::remove_all(directory); }
    fs::path directory;
    std::string path;
    DatasetAttributes attributes;
};

} // namespace

TEST_F(DatasetTest, RoundTripOfRecordsAndSkips) {
    std::vector<DatasetRecord> records = {makeRecord("p000000/c0", 7, 3, 1), makeRecord("p000001/c0", 12, 1, 2),
                                          makeRecord("p000002/c0", 5, 0, 3)};
    {
        DatasetWriter writer(path, attributes);
        for (const DatasetRecord& record : records)
            writer.addRecord(record);
        writer.addSkipped({"p000003/c0", "bad", "invalid SMILES \"C1\": unclosed ring"});
    }
    EXPECT_FALSE(fs::exists(path + ".journal"));
    DatasetReader reader(path);
    ASSERT_EQ(reader.getNumRecords(), 3);
    for (int r = 0; r < 3; r++)
        expectSameRecord(reader.getRecord(r), records[r]);
    EXPECT_EQ(reader.getFrameCounts(), (std::vector<long long>{3, 1, 0}));
    EXPECT_EQ(reader.getAtomCounts(), (std::vector<long long>{7, 12, 5}));
    ASSERT_EQ(reader.getSkipped().size(), 1u);
    EXPECT_EQ(reader.getSkipped()[0].reason, "invalid SMILES \"C1\": unclosed ring");
    EXPECT_EQ(reader.getAttributes().optionsJson, attributes.optionsJson);
    EXPECT_EQ(reader.getAttributes().interactionForces, "force_groups:1");
}

TEST_F(DatasetTest, ResumingAppendsAndRefusesOtherOptions) {
    {
        DatasetWriter writer(path, attributes);
        writer.addRecord(makeRecord("a", 4, 2, 1));
    }
    {
        DatasetWriter writer(path, attributes);
        EXPECT_TRUE(writer.contains("a"));
        EXPECT_FALSE(writer.contains("b"));
        EXPECT_THROW(writer.addRecord(makeRecord("a", 4, 2, 1)), OpenMM::OpenMMException);
        writer.addRecord(makeRecord("b", 4, 2, 2));
    }
    EXPECT_EQ(DatasetReader(path).getKeys(), (std::vector<std::string>{"a", "b"}));
    DatasetAttributes other = attributes;
    other.optionsJson = "{\"seed\":2}";
    try {
        DatasetWriter writer(path, other);
        FAIL() << "other options were accepted";
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
    }
    DatasetWriter writer(path, other, true);
    writer.fold();
    EXPECT_EQ(DatasetReader(path).getNumRecords(), 0);
}

TEST_F(DatasetTest, LeftoverJournalIsFoldedOnceAndStaleTemporariesIgnored) {
    DatasetRecord a = makeRecord("a", 3, 2, 1), b = makeRecord("b", 3, 2, 2);
    // What a kill can leave: the file holds "a"; the journal holds "a" again (killed between a fold's rename and
    // the deletion of its entries), "b" (never folded) and a temporary that was never renamed.
    {
        DatasetWriter writer(path, attributes);
        writer.addRecord(a);
    }
    fs::create_directories(path + ".journal");
    auto journalEntry = [&](const DatasetRecord& record, const std::string& name) {
        std::string side = (directory / (name + "-side.h5")).string();
        DatasetWriter writer(side, attributes);
        writer.addRecord(record); // stays in side's journal until the writer folds
        fs::copy(fs::directory_iterator(side + ".journal")->path(), path + ".journal/" + name + ".h5");
    };
    journalEntry(a, "a");
    journalEntry(b, "b");
    std::ofstream(path + ".journal/c.tmp") << "half a file";
    {
        DatasetWriter writer(path, attributes);
        EXPECT_TRUE(writer.contains("a"));
        EXPECT_TRUE(writer.contains("b"));
    }
    DatasetReader reader(path);
    ASSERT_EQ(reader.getKeys(), (std::vector<std::string>{"a", "b"}));
    expectSameRecord(reader.getRecord(0), a);
    expectSameRecord(reader.getRecord(1), b);
    EXPECT_FALSE(fs::exists(path + ".journal"));
}

TEST_F(DatasetTest, BadInputGivesClearErrors) {
    try {
        DatasetReader reader((directory / "missing.h5").string());
        FAIL();
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
    std::ofstream(directory / "text.h5") << "not hdf5";
    try {
        DatasetReader reader((directory / "text.h5").string());
        FAIL();
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("not a readable HDF5 file"), std::string::npos) << e.what();
    }
    DatasetRecord broken = makeRecord("x", 4, 2, 1);
    broken.positionsNm.pop_back();
    DatasetWriter writer(path, attributes);
    try {
        writer.addRecord(broken);
        FAIL();
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("frames × atoms × 3"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(writer.contains("x"));
    try {
        DatasetWriter nowhere((directory / "no" / "such" / "dir.h5").string(), attributes);
        FAIL();
    } catch (const OpenMM::OpenMMException& e) {
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
}

TEST_F(DatasetTest, MergeKeepsOrderAndRefusesDuplicateKeys) {
    std::string first = (directory / "first.h5").string(), second = (directory / "second.h5").string();
    DatasetRecord a = makeRecord("a", 3, 1, 1), b = makeRecord("b", 5, 2, 2), c = makeRecord("c", 2, 3, 3);
    {
        DatasetWriter writer(first, attributes);
        writer.addRecord(a);
        writer.addSkipped({"s", "bad", "why"});
    }
    {
        DatasetWriter writer(second, attributes);
        writer.addRecord(b);
        writer.addRecord(c);
    }
    std::string merged = (directory / "merged.h5").string();
    mergeDatasets({first, second}, merged, "merge");
    DatasetReader reader(merged);
    ASSERT_EQ(reader.getKeys(), (std::vector<std::string>{"a", "b", "c"}));
    expectSameRecord(reader.getRecord(0), a);
    expectSameRecord(reader.getRecord(2), c);
    EXPECT_EQ(reader.getSkipped().size(), 1u);
    EXPECT_THROW(mergeDatasets({first, first}, (directory / "twice.h5").string(), "merge"), OpenMM::OpenMMException);
    EXPECT_FALSE(fs::exists(directory / "twice.h5"));
}

TEST_F(DatasetTest, LabelSetsRoundTripAndMustMatchTheFile) {
    attributes.labelSets = {{"xtb", "GFN2-xTB (test)"}};
    DatasetRecord record = makeRecord("a", 6, 3, 4);
    LabelSet labels;
    labels.name = "xtb";
    for (int f = 0; f < 3; f++) {
        labels.totalEnergyKJPerMol.push_back(-100.0 - f);
        labels.interactionEnergyKJPerMol.push_back(-10.0 - f);
    }
    for (float x : record.totalForcesKJPerMolNm) {
        labels.totalForcesKJPerMolNm.push_back(2 * x);
        labels.interactionForcesKJPerMolNm.push_back(-x);
    }
    record.labelSets.push_back(labels);
    {
        DatasetWriter writer(path, attributes);
        writer.addRecord(record);
        DatasetRecord unlabelled = makeRecord("b", 6, 3, 5);
        EXPECT_THROW(writer.addRecord(unlabelled), OpenMM::OpenMMException);
    }
    DatasetReader reader(path);
    ASSERT_EQ(reader.getAttributes().labelSets, attributes.labelSets);
    DatasetRecord read = reader.getRecord(0);
    expectSameRecord(read, record);
    ASSERT_EQ(read.labelSets.size(), 1u);
    EXPECT_EQ(read.labelSets[0].name, "xtb");
    EXPECT_EQ(read.labelSets[0].totalEnergyKJPerMol, labels.totalEnergyKJPerMol);
    EXPECT_EQ(read.labelSets[0].interactionEnergyKJPerMol, labels.interactionEnergyKJPerMol);
    EXPECT_EQ(read.labelSets[0].totalForcesKJPerMolNm, labels.totalForcesKJPerMolNm);
    EXPECT_EQ(read.labelSets[0].interactionForcesKJPerMolNm, labels.interactionForcesKJPerMolNm);
    DatasetAttributes other = attributes;
    other.labelSets = {{"xtb", "another method"}};
    EXPECT_THROW(DatasetWriter(path, other), OpenMM::OpenMMException);
}

TEST_F(DatasetTest, VersionTwoFilesStillReadAndResumeInTheirOwnFormat) {
    // Written by the format-2 writer (variable-length strings; see tests/python/test_dataset.py).
    const std::string source = std::string(MRL_TEST_DATA) + "/dataset-v2.h5";
    {
        DatasetReader reader(source);
        ASSERT_EQ(reader.getAttributes().labelSets.size(), 1u);
        EXPECT_EQ(reader.getAttributes().labelSets[0].first, "gfn2");
        ASSERT_EQ(reader.getNumRecords(), 2);
        DatasetRecord record = reader.getRecord(1);
        EXPECT_EQ(record.key, "p0001/c0");
        EXPECT_EQ(record.smiles, (std::vector<std::string>{"O", "O"}));
        EXPECT_EQ(record.labelSets[0].interactionEnergyKJPerMol, (std::vector<double>{-1.0, -3.0}));
        ASSERT_EQ(reader.getSkipped().size(), 1u);
        EXPECT_EQ(reader.getSkipped()[0].reason, "SCF did not converge");
    }
    std::string copy = (directory / "v2.h5").string();
    fs::copy_file(source, copy);
    DatasetAttributes existing = DatasetReader(copy).getAttributes();
    {
        DatasetWriter writer(copy, existing);
        DatasetRecord extra = DatasetReader(copy).getRecord(0);
        extra.key = "p0005/c0";
        extra.smiles[0] = std::string(200, 'C');
        writer.addRecord(extra);
    }
    DatasetReader reader(copy);
    ASSERT_EQ(reader.getNumRecords(), 3);
    EXPECT_EQ(reader.getRecord(2).smiles[0], std::string(200, 'C'));
    EXPECT_EQ(reader.getRecord(1).smiles, (std::vector<std::string>{"O", "O"}));
}

TEST_F(DatasetTest, VersionOneFilesStillRead) {
    // Written by the format-1 writer of openmm-mrl 0.1.0 (see tests/python/test_dataset.py).
    DatasetReader reader(std::string(MRL_TEST_DATA) + "/dataset-v1.h5");
    EXPECT_TRUE(reader.getAttributes().labelSets.empty());
    ASSERT_EQ(reader.getNumRecords(), 2);
    DatasetRecord record = reader.getRecord(1);
    EXPECT_EQ(record.key, "p0001/c0");
    EXPECT_EQ(record.numAtoms(), 5);
    EXPECT_EQ(record.totalEnergyKJPerMol, (std::vector<double>{-0.5, -1.5}));
    EXPECT_TRUE(record.labelSets.empty());
    ASSERT_EQ(reader.getSkipped().size(), 1u);
    EXPECT_EQ(reader.getSkipped()[0].reason, "MMFF94 typing failed");
}
