// SPDX-License-Identifier: MIT
// OpenMM platform loading for the tools (MRLPlatforms.h), with the plugins of the OpenMM this was built against.
#include <string>

#include <gtest/gtest.h>

#include "MRLPlatforms.h"
#include "openmm/Platform.h"

using namespace MRLPlugin;

TEST(MRLPlatforms, FindsPlatformsByNameAfterLoadingThePlugins) {
    OpenMM::Platform* reference = findPlatform("Reference");
    ASSERT_NE(reference, nullptr);
    EXPECT_EQ(reference->getName(), "Reference");
    OpenMM::Platform* cpu = findPlatform("CPU"); // a plugin of every OpenMM build
    ASSERT_NE(cpu, nullptr) << "plugins that failed to load:" << pluginLoadFailures();
    EXPECT_EQ(cpu->getName(), "CPU");
    EXPECT_EQ(findPlatform("Quantum"), nullptr);
}

TEST(MRLPlatforms, LoadsThePluginsOnce) {
    loadPlatformPlugins();
    int count = OpenMM::Platform::getNumPlatforms();
    EXPECT_GT(count, 1);
    loadPlatformPlugins();
    findPlatform("CPU");
    EXPECT_EQ(OpenMM::Platform::getNumPlatforms(), count);
}

TEST(MRLPlatforms, ListsEveryRegisteredPlatform) {
    loadPlatformPlugins();
    std::string names = availablePlatforms();
    int count = OpenMM::Platform::getNumPlatforms();
    int separators = 0;
    for (size_t at = names.find(", "); at != std::string::npos; at = names.find(", ", at + 1))
        separators++;
    EXPECT_EQ(separators, count - 1) << names;
    for (int i = 0; i < count; i++)
        EXPECT_NE(names.find(OpenMM::Platform::getPlatform(i).getName()), std::string::npos) << names;
    EXPECT_EQ(names.rfind("Reference", 0), 0u) << names; // the built-in platform comes first
}
