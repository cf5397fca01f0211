// SPDX-License-Identifier: MIT
#include "MRLPlatforms.h"

#include <cstdlib>

#include "openmm/Platform.h"

namespace MRLPlugin {

void loadPlatformPlugins() {
    static bool loaded = false;
    if (loaded)
        return;
    loaded = true;
    if (OpenMM::Platform::getNumPlatforms() > 1)
        return; // already loaded by someone
    const char* fromEnvironment = std::getenv("OPENMM_PLUGIN_DIR");
    std::string directory = fromEnvironment != nullptr ? fromEnvironment : MRL_OPENMM_PLUGIN_DIR;
    OpenMM::Platform::loadPluginsFromDirectory(directory);
}

std::string availablePlatforms() {
    std::string names;
    for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
        names += (i > 0 ? ", " : "") + OpenMM::Platform::getPlatform(i).getName();
    return names;
}

std::string pluginLoadFailures() {
    std::string failures;
    for (const std::string& failure : OpenMM::Platform::getPluginLoadFailures())
        failures += "\n  " + failure;
    return failures;
}

OpenMM::Platform* findPlatform(const std::string& name) {
    loadPlatformPlugins();
    for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
        if (OpenMM::Platform::getPlatform(i).getName() == name)
            return &OpenMM::Platform::getPlatform(i);
    return nullptr;
}

} // namespace MRLPlugin
