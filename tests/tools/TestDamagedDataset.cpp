// SPDX-License-Identifier: MIT
// Damaged dataset files (cut short, bytes changed, a newer format) through DatasetReader, `mrl-envgen inspect`
// and a resumed `mrl-envgen build`: a clear error naming the file, never a crash, and never a changed file.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "DatasetTestRecord.h"
#include "MRLDataset.h"
#include "MRLDatasetLayout.h"
#include "openmm/OpenMMException.h"

using namespace MRLPlugin;
using MRLTest::makeRecord;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

void spit(const std::string& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Everything a reader can be asked, as `mrl-envgen inspect` asks it.
void readEverything(const std::string& path) {
    DatasetReader reader(path);
    reader.getFrameCounts();
    reader.getAtomCounts();
    reader.getSkipped();
    for (int r = 0; r < reader.getNumRecords(); r++)
        reader.getRecord(r);
}

class DamagedDataset : public ::testing::Test {
protected:
    void SetUp() override {
        dir = fs::temp_directory_path() /
              ("mrl-damaged-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
               std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
        attributes.optionsJson = "{\"seed\":1}";
        attributes.commandLine = "test";
    }
    void TearDown() override { fs::remove_all(dir); }
    std::string path(const std::string& name) const { return (dir / name).string(); }

    /// A real dataset of 6 records and one skip, written by DatasetWriter; returns its bytes.
    std::string writeDataset(const std::string& name) {
        {
            DatasetWriter writer(path(name), attributes);
            for (int r = 0; r < 6; r++)
                writer.addRecord(makeRecord(std::string(1, 'r').append(std::to_string(r)), 10 + r, 4, r));
            writer.addSkipped({"s0", "pair-s0", "MMFF94 typing failed"});
        }
        return slurp(path(name));
    }

    /// Runs `mrl-envgen ARGS`; returns the exit status (128 for a signal), stderr in `err`.
    int envgen(const std::string& args) {
        std::string command = std::string("'") + MRL_ENVGEN + "' " + args + " > '" + path("stdout.txt") + "' 2> '" +
                              path("stderr.txt") + "'";
        int status = std::system(command.c_str());
        err = slurp(path("stderr.txt"));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }

    /// The message of the OpenMMException that reading all of `file` throws, "" when it reads.
    static std::string readError(const std::string& file) {
        try {
            readEverything(file);
        } catch (const OpenMM::OpenMMException& e) {
            return e.what();
        }
        return "";
    }

    /// Copies of `bytes` with 8 bytes changed at a used (non-zero) place that a reader notices, up to `count`.
    std::vector<std::string> noticedFlips(const std::string& bytes, size_t count) {
        std::vector<std::string> flips;
        std::mt19937 random(7);
        for (int attempt = 0; attempt < 50 && flips.size() < count; attempt++) {
            std::string flipped = bytes;
            size_t start = bytes.size() / 10 + random() % (bytes.size() * 9 / 10 - 8);
            while (start < bytes.size() - 8 && bytes[start] == 0)
                start++;
            for (size_t i = start; i < start + 8; i++)
                flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
            spit(path("probe.h5"), flipped);
            if (!readError(path("probe.h5")).empty())
                flips.push_back(flipped);
        }
        return flips;
    }

    fs::path dir;
    DatasetAttributes attributes;
    std::string err;
};

} // namespace

TEST_F(DamagedDataset, CutShortFileIsRefusedNamingTheFile) {
    std::string bytes = writeDataset("whole.h5");
    for (double fraction : {0.1, 0.5, 0.9, 0.99}) {
        spit(path("cut.h5"), bytes.substr(0, static_cast<size_t>(fraction * bytes.size())));
        std::string message = readError(path("cut.h5"));
        EXPECT_NE(message.find(path("cut.h5")), std::string::npos) << fraction << ": " << message;
        EXPECT_EQ(envgen("inspect '" + path("cut.h5") + "' --records 6"), 1) << fraction << ": " << err;
        EXPECT_NE(err.find(path("cut.h5")), std::string::npos) << err;
    }
}

TEST_F(DamagedDataset, FlippedBytesGiveAnErrorNamingTheFileOrAReadableFileNeverACrash) {
    std::string bytes = writeDataset("whole.h5");
    // Most of a small file is unused space (zeros) where a flip changes nothing: flip bytes that hold something.
    std::vector<size_t> used;
    for (size_t i = bytes.size() / 10; i < bytes.size(); i++)
        if (bytes[i] != 0)
            used.push_back(i);
    ASSERT_GT(used.size(), 1000u);
    int refused = 0, tries = 0;
    for (unsigned seed = 1; seed <= 5; seed++)
        for (int place = 0; place < 4; place++) {
            // 8 bytes changed at a random used place: a compressed chunk, an offset, a heap or an object header.
            std::mt19937 random(seed * 10 + place);
            std::string flipped = bytes;
            size_t start = used[random() % used.size()];
            for (size_t i = start; i < start + 8 && i < flipped.size(); i++)
                flipped[i] = static_cast<char>(flipped[i] ^ (1 + random() % 255));
            spit(path("flipped.h5"), flipped);
            std::string context = "seed " + std::to_string(seed * 10 + place) + ", byte " + std::to_string(start);
            std::string message = readError(path("flipped.h5"));
            if (!message.empty()) {
                EXPECT_NE(message.find(path("flipped.h5")), std::string::npos) << context << ": " << message;
            }
            int status = envgen("inspect '" + path("flipped.h5") + "' --records 6");
            EXPECT_TRUE(status == 0 || status == 1) << context << ": exit status " << status << ", " << err;
            if (status != 0) {
                EXPECT_NE(err.find(path("flipped.h5")), std::string::npos) << context << ": " << err;
            }
            refused += message.empty() ? 0 : 1;
            tries++;
        }
    std::printf("%d of %d files with flipped bytes were refused, the others read\n", refused, tries);
    EXPECT_GT(refused, 0) << "no flip was noticed: the test does not reach the data";
}

TEST_F(DamagedDataset, NewerFormatVersionIsRefusedNamingTheFileAndTheVersions) {
    writeDataset("newer.h5");
    {
        hid_t file = H5Fopen(path("newer.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(file, 0);
        hid_t attribute = H5Aopen(file, "format_version", H5P_DEFAULT);
        long long version = DATASET_FORMAT_VERSION + 1;
        ASSERT_GE(H5Awrite(attribute, H5T_NATIVE_LLONG, &version), 0);
        H5Aclose(attribute);
        H5Fclose(file);
    }
    std::string message = readError(path("newer.h5"));
    EXPECT_NE(message.find(path("newer.h5")), std::string::npos) << message;
    const std::string newer = "format version " + std::to_string(DATASET_FORMAT_VERSION + 1);
    EXPECT_NE(message.find(newer), std::string::npos) << message;
    EXPECT_NE(message.find("reads versions 1 to " + std::to_string(DATASET_FORMAT_VERSION)), std::string::npos)
        << message;
    EXPECT_EQ(envgen("inspect '" + path("newer.h5") + "'"), 1);
    EXPECT_NE(err.find(newer), std::string::npos) << err;
}

TEST_F(DamagedDataset, WriterResumingADamagedFileRefusesAndLeavesItAsItWas) {
    std::string bytes = writeDataset("data.h5");
    std::vector<std::string> damaged = noticedFlips(bytes, 4);
    damaged.push_back(bytes.substr(0, bytes.size() / 2));
    ASSERT_GE(damaged.size(), 3u);
    for (size_t d = 0; d < damaged.size(); d++) {
        spit(path("data.h5"), damaged[d]);
        try {
            DatasetWriter writer(path("data.h5"), attributes);
            writer.addRecord(makeRecord("new", 5, 2, 99));
            ADD_FAILURE() << "damage " << d << " was not noticed";
        } catch (const OpenMM::OpenMMException& e) {
            EXPECT_NE(std::string(e.what()).find(path("data.h5")), std::string::npos) << e.what();
        }
        EXPECT_EQ(slurp(path("data.h5")), damaged[d]) << "damage " << d << ": the file was changed";
        EXPECT_FALSE(fs::exists(path("data.h5.journal"))) << "damage " << d;
    }
}

TEST_F(DamagedDataset, BuildResumingADamagedOutputRefusesAndLeavesItByteIdentical) {
    std::ofstream(path("pairs.csv")) << "central,partner\nCCO,O\nCC(=O)O,O\n";
    std::string build = "build '" + path("pairs.csv") + "' --output '" + path("envs.h5") +
                        "' --copies 2 --equilibration 10 --steps 20 --interval 10 --quiet";
    ASSERT_EQ(envgen(build + " --limit 1"), 0) << err;
    std::string bytes = slurp(path("envs.h5"));
    std::vector<std::string> damaged = noticedFlips(bytes, 3);
    damaged.push_back(bytes.substr(0, bytes.size() - 1000));
    ASSERT_GE(damaged.size(), 3u);
    for (size_t d = 0; d < damaged.size(); d++) {
        spit(path("envs.h5"), damaged[d]);
        EXPECT_EQ(envgen(build), 1) << "damage " << d << ": " << err;
        EXPECT_NE(err.find(path("envs.h5")), std::string::npos) << err;
        EXPECT_EQ(slurp(path("envs.h5")), damaged[d]) << "damage " << d << ": the file was changed";
    }
    std::printf("%zu damaged outputs refused\n", damaged.size());
}
