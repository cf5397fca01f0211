// SPDX-License-Identifier: MIT
// The properties of an MRLForce, parsed once into MRLSettings.
#include "MRLTestUtilities.h"
#include "internal/MRLSettings.h"

using namespace MRLPlugin;
using namespace MRLTest;

namespace {

TEST(MRLSettings, DefaultsAreThoseDocumented) {
    MRLSettings settings;
    EXPECT_EQ(0, settings.threads);
    EXPECT_EQ(Precision::Platform, settings.precision);
    EXPECT_DOUBLE_EQ(0.05, settings.neighborListSkinNm);
    EXPECT_TRUE(settings.reuseMemory);
    EXPECT_FALSE(settings.useCudaGraphs);
    EXPECT_EQ(2, settings.cudaGraphWarmupSteps);
}

TEST(MRLSettings, PropertiesBecomeTypedValues) {
    MRLSettings settings;
    settings.set("Threads", "3");
    settings.set("Precision", "double");
    settings.set("NeighborListSkin", "0.02");
    settings.set("ReuseMemory", "false");
    settings.set("UseCUDAGraphs", "true");
    settings.set("CUDAGraphWarmupSteps", "5");
    EXPECT_EQ(3, settings.threads);
    EXPECT_EQ(Precision::Double, settings.precision);
    EXPECT_DOUBLE_EQ(0.02, settings.neighborListSkinNm);
    EXPECT_FALSE(settings.reuseMemory);
    EXPECT_TRUE(settings.useCudaGraphs);
    EXPECT_EQ(5, settings.cudaGraphWarmupSteps);
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
