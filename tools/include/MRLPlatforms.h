#ifndef OPENMM_MRL_PLATFORMS_H_
#define OPENMM_MRL_PLATFORMS_H_

// SPDX-License-Identifier: MIT
// OpenMM platforms for the tools: the plugins (OpenMM's own and ours) loaded once, a platform found by name.

#include <string>

namespace OpenMM {
class Platform;
} // namespace OpenMM

namespace MRLPlugin {

/// Loads the OpenMM plugins from $OPENMM_PLUGIN_DIR, or from the plugin directory of the OpenMM this was
/// built against.  Only the first call loads, and only when no plugin platform is registered yet.
void loadPlatformPlugins();

/// The names of the registered platforms, e.g. "Reference, CPU, OpenCL".
std::string availablePlatforms();

/// The plugins that failed to load, one "\n  " + message each ("" when every plugin loaded).
std::string pluginLoadFailures();

/// The platform of this name (the plugins loaded first), or nullptr when there is none.
OpenMM::Platform* findPlatform(const std::string& name);

} // namespace MRLPlugin

#endif
