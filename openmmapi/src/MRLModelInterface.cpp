// SPDX-License-Identifier: MIT
#include "MRLModelInterface.h"
#include <utility>

using namespace MRLPlugin;

namespace {

// The one table of interface names.
const std::pair<ModelInterface, std::string> interfaceNames[] = {
    {ModelInterface::Positions, "positions"},
    {ModelInterface::Graph1, "graph/1"},
};

} // namespace

std::optional<ModelInterface> MRLPlugin::parseModelInterface(const std::string& name) {
    for (const auto& [interface, text] : interfaceNames)
        if (text == name)
            return interface;
    return std::nullopt;
}

const std::string& MRLPlugin::getModelInterfaceName(ModelInterface interface) {
    for (const auto& [known, text] : interfaceNames)
        if (known == interface)
            return text;
    return interfaceNames[0].second; // unreachable: every enumerator is in the table
}

std::string MRLPlugin::describeModelInterfaces() {
    std::string names;
    const size_t count = std::size(interfaceNames);
    for (size_t i = 0; i < count; i++)
        names += std::string(i == 0 ? "" : (i + 1 == count ? " or " : ", ")) + "\"" + interfaceNames[i].second + "\"";
    return names;
}
