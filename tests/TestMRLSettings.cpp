// SPDX-License-Identifier: MIT
// The properties of an MRLForce, parsed once into MRLSettings.
#include "MRLTestUtilities.h"
#include "internal/MRLSettings.h"

using namespace MRLPlugin;
using namespace MRLTest;

namespace {

// Every field of the settings, in the order of MRLSettings.
void expectSettings(const MRLSettings& settings, int threads, Precision precision, double skinNm, bool reuseMemory,
                    bool useCudaGraphs, int warmupSteps) {
    EXPECT_EQ(threads, settings.threads);
    EXPECT_EQ(precision, settings.precision);
    EXPECT_DOUBLE_EQ(skinNm, settings.neighborListSkinNm);
    EXPECT_EQ(reuseMemory, settings.reuseMemory);
    EXPECT_EQ(useCudaGraphs, settings.useCudaGraphs);
    EXPECT_EQ(warmupSteps, settings.cudaGraphWarmupSteps);
}

TEST(MRLSettings, DefaultsAreThoseDocumented) {
    expectSettings(MRLSettings(), 0, Precision::Platform, 0.05, true, false, 2);
}

TEST(MRLSettings, PropertiesBecomeTypedValues) {
    MRLSettings settings;
    const std::pair<const char*, const char*> properties[] = {
        {"Threads", "3"},         {"Precision", "double"},   {"NeighborListSkin", "0.02"},
        {"ReuseMemory", "false"}, {"UseCUDAGraphs", "true"}, {"CUDAGraphWarmupSteps", "5"}};
    for (const auto& [name, value] : properties)
        settings.set(name, value);
    expectSettings(settings, 3, Precision::Double, 0.02, false, true, 5);
}

TEST(MRLSettings, EmptyValueRestoresTheDefault) {
    MRLSettings settings;
    settings.set("NeighborListSkin", "0.2");
    settings.set("Precision", "single");
    settings.set("NeighborListSkin", "");
    settings.set("Precision", "");
    EXPECT_DOUBLE_EQ(0.05, settings.neighborListSkinNm);
    EXPECT_EQ(Precision::Platform, settings.precision);
}

TEST(MRLSettings, PlatformPrecisionUnlessOneIsSet) {
    MRLSettings settings;
    EXPECT_EQ(Precision::Single, settings.resolvePrecision(Precision::Single));
    settings.set("Precision", "double");
    EXPECT_EQ(Precision::Double, settings.resolvePrecision(Precision::Single));
}

TEST(MRLSettings, InvalidValueLeavesTheSettingsUnchanged) {
    MRLSettings settings;
    settings.set("Threads", "2");
    EXPECT_THROW_MESSAGE(settings.set("Threads", "-1"), "Threads must be a non-negative integer");
    EXPECT_EQ(2, settings.threads);
}

TEST(MRLSettings, ForceKeepsTheParsedSettings) {
    MRLForce force(model("pair_positions.pt"));
    force.setProperty("NeighborListSkin", "0.03");
    force.setProperty("UseCUDAGraphs", "true");
    EXPECT_DOUBLE_EQ(0.03, force.getSettings().neighborListSkinNm);
    EXPECT_TRUE(force.getSettings().useCudaGraphs);
    EXPECT_EQ("0.03", force.getProperties().at("NeighborListSkin"));
}

} // namespace
