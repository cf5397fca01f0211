// SPDX-License-Identifier: MIT
#include "internal/MRLSettings.h"
#include "openmm/OpenMMException.h"
#include <algorithm>
#include <limits>
#include <sstream>

using namespace MRLPlugin;
using OpenMM::OpenMMException;

namespace {

// A non-negative number; an integer where `integer` is set.
double parseNumber(const std::string& name, const std::string& value, bool integer) {
    double number = 0.0;
    std::istringstream stream(value);
    stream >> number;
    bool valid = !stream.fail() && stream.eof() && number >= 0;
    if (valid && integer)
        valid = number <= std::numeric_limits<int>::max() && number == static_cast<int>(number);
    if (!valid)
        throw OpenMMException("MRLForce: the property " + name + " must be a " +
                              (integer ? "non-negative integer" : "non-negative distance in nm") + " (got \"" + value +
                              "\").");
    return number;
}

bool parseBool(const std::string& name, const std::string& value) {
    if (value != "true" && value != "false")
        throw OpenMMException("MRLForce: the property " + name + " must be \"true\", \"false\" or \"\" (got \"" +
                              value + "\").");
    return value == "true";
}

Precision parsePrecision(const std::string& value) {
    if (value != "single" && value != "double")
        throw OpenMMException("MRLForce: the property Precision must be \"single\", \"double\" or \"\" (got \"" +
                              value + "\").");
    return value == "double" ? Precision::Double : Precision::Single;
}

} // namespace

const std::vector<std::string>& MRLSettings::getPropertyNames() {
    static const std::vector<std::string> names = {"Threads",     "Precision",     "NeighborListSkin",
                                                   "ReuseMemory", "UseCUDAGraphs", "CUDAGraphWarmupSteps"};
    return names;
}

void MRLSettings::set(const std::string& name, const std::string& value) {
    const std::vector<std::string>& names = getPropertyNames();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::string known;
        for (const std::string& n : names)
            known += (known.empty() ? "" : ", ") + n;
        throw OpenMMException("MRLForce: unknown property '" + name + "'. Known properties: " + known + ".");
    }
    const MRLSettings defaults;
    bool unset = value.empty();
    if (name == "Threads")
        threads = unset ? defaults.threads : static_cast<int>(parseNumber(name, value, true));
    else if (name == "Precision")
        precision = unset ? defaults.precision : parsePrecision(value);
    else if (name == "NeighborListSkin")
        neighborListSkinNm = unset ? defaults.neighborListSkinNm : parseNumber(name, value, false);
    else if (name == "ReuseMemory")
        reuseMemory = unset ? defaults.reuseMemory : parseBool(name, value);
    else if (name == "UseCUDAGraphs")
        useCudaGraphs = unset ? defaults.useCudaGraphs : parseBool(name, value);
    else if (name == "CUDAGraphWarmupSteps")
        cudaGraphWarmupSteps = unset ? defaults.cudaGraphWarmupSteps : static_cast<int>(parseNumber(name, value, true));
}

Precision MRLSettings::resolvePrecision(Precision platformPrecision) const {
    return precision == Precision::Platform ? platformPrecision : precision;
}
