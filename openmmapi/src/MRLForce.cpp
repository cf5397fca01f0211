// SPDX-License-Identifier: MIT
#include "MRLForce.h"
#include "internal/MRLArchive.h"
#include "internal/MRLForceImpl.h"
#include "internal/MRLModel.h"
#include "internal/MRLPackage.h"
#include "openmm/OpenMMException.h"
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

using namespace MRLPlugin;
using namespace OpenMM;

MRLForce::MRLForce(const std::string& file) : file(file) {
    std::ifstream stream(file, std::ios::binary);
    if (!stream)
        throw OpenMMException("MRLForce: cannot open the model file '" + file +
                              "'. Check the path (relative paths are taken from the current directory).");
    std::ostringstream contents;
    contents << stream.rdbuf();
    modelBytes = contents.str();
    inspectModel("the file '" + file + "'");
}

MRLForce::MRLForce(const char* modelData, size_t modelSize) : modelBytes(modelData, modelSize) {
    inspectModel("the model bytes");
}

static ModelInterface parseDeclaredInterface(const std::string& name, const std::string& source) {
    std::optional<ModelInterface> declared = parseModelInterface(name);
    if (!declared)
        throw OpenMMException("MRLForce: " + source + " declares mrl_interface = \"" + name +
                              "\", which this plugin does not know. Use " + describeModelInterfaces() + ".");
    return *declared;
}

static double checkedCutoff(double cutoff, const std::string& source) {
    if (!(cutoff > 0.0) || !std::isfinite(cutoff))
        throw OpenMMException("MRLForce: the cutoff_nm of " + source + " is " + std::to_string(cutoff) +
                              "; it must be a positive distance in nm.");
    return cutoff;
}

void MRLForce::inspectModel(const std::string& source) {
    std::vector<std::string> members = checkModelArchive(modelBytes, source);
    if (isAOTInductorPackage(members)) {
        inspectPackage(MRLPackage(modelBytes, members, source), source);
        return;
    }
    format = ModelFormat::TorchScript;
    torch::jit::Module module = loadModel(modelBytes, source);
    numForwardArguments = getNumForwardArguments(module);
    interface = ModelInterface::Positions;
    if (module.hasattr("mrl_interface")) {
        torch::IValue value = module.attr("mrl_interface");
        if (!value.isString())
            throw OpenMMException("MRLForce: the attribute mrl_interface of " + source + " must be a string, " +
                                  describeModelInterfaces() + ".");
        interface = parseDeclaredInterface(value.toStringRef(), source);
    }
    if (interface == ModelInterface::Graph1) {
        if (!module.hasattr("cutoff_nm"))
            throw OpenMMException("MRLForce: " + source + " is a \"" + getInterface() +
                                  "\" model without a cutoff_nm attribute. Give the module a "
                                  "float attribute cutoff_nm (the interaction cutoff in nm).");
        torch::IValue value = module.attr("cutoff_nm");
        if (!value.isDouble() && !value.isInt())
            throw OpenMMException("MRLForce: the attribute cutoff_nm of " + source + " must be a number (nm).");
        cutoff = checkedCutoff(value.isDouble() ? value.toDouble() : static_cast<double>(value.toInt()), source);
    }
    outputsForces = false;
    if (module.hasattr("outputs_forces")) {
        torch::IValue value = module.attr("outputs_forces");
        if (!value.isBool())
            throw OpenMMException("MRLForce: the attribute outputs_forces of " + source + " must be a bool.");
        outputsForces = value.toBool();
    }
}

/** A non-negative integer of a package's metadata. */
static int metadataCount(const std::string& text, const std::string& key, const std::string& source) {
    char* end = nullptr;
    long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || value < 0 || value > 1000)
        throw OpenMMException("MRLForce: the metadata " + key + " of " + source + " is \"" + text +
                              "\"; it must be a count. Export the package again with openmmmrl.export_pt2.");
    return static_cast<int>(value);
}

void MRLForce::inspectPackage(const MRLPackage& package, const std::string& source) {
    format = ModelFormat::AOTInductor;
    interface = parseDeclaredInterface(package.getSetting("mrl_interface"), source);
    bool periodic = package.getSetting("mrl_periodic") == "true";
    int numGlobals =
        metadataCount(package.getSetting("mrl_num_global_parameters"), "mrl_num_global_parameters", source);
    if (interface == ModelInterface::Graph1) {
        std::string text = package.getSetting("cutoff_nm");
        char* end = nullptr;
        double value = std::strtod(text.c_str(), &end);
        if (*end != '\0')
            throw OpenMMException("MRLForce: the metadata cutoff_nm of " + source + " is \"" + text +
                                  "\"; it must be a number (nm).");
        cutoff = checkedCutoff(value, source);
    }
    numForwardArguments = (interface == ModelInterface::Graph1 ? 5 : (periodic ? 2 : 1)) + numGlobals;
    outputsForces = true;
}

void MRLForce::setOutputsForces(bool outputs) {
    if (format == ModelFormat::AOTInductor && !outputs)
        throw OpenMMException("MRLForce: an AOTInductor package always returns its forces (they are computed in its "
                              "graph), so setOutputsForces(false) does not apply to it.");
    outputsForces = outputs;
}

static void checkUnique(const std::vector<int>& values, const std::string& what) {
    std::set<int> seen;
    for (int value : values) {
        if (value < 0)
            throw OpenMMException("MRLForce: " + what + " contains the negative index " + std::to_string(value) + ".");
        if (!seen.insert(value).second)
            throw OpenMMException("MRLForce: " + what + " contains the index " + std::to_string(value) +
                                  " more than once. Each particle may appear once in the ML region.");
    }
}

void MRLForce::setParticles(const std::vector<int>& particles) {
    checkUnique(particles, "the particle list");
    this->particles = particles;
}

void MRLForce::setAtomicNumbers(const std::vector<int>& atomicNumbers) {
    for (int z : atomicNumbers)
        if (z < 0 || z > 118)
            throw OpenMMException("MRLForce: " + std::to_string(z) +
                                  " is not an atomic number; use 1 to 118 (0 for a dummy or virtual site).");
    this->atomicNumbers = atomicNumbers;
}

void MRLForce::setMoleculeIndices(const std::vector<int>& moleculeIndices) {
    for (int m : moleculeIndices)
        if (m < 0)
            throw OpenMMException("MRLForce: molecule indices must not be negative (got " + std::to_string(m) + ").");
    this->moleculeIndices = moleculeIndices;
}

int MRLForce::addGlobalParameter(const std::string& name, double defaultValue) {
    globalParameters.push_back({name, defaultValue});
    return static_cast<int>(globalParameters.size()) - 1;
}

void MRLForce::checkGlobalParameterIndex(int index) const {
    if (index < 0 || index >= getNumGlobalParameters())
        throw OpenMMException("MRLForce: global parameter index " + std::to_string(index) + " is out of range (" +
                              std::to_string(getNumGlobalParameters()) + " parameters).");
}

const std::string& MRLForce::getGlobalParameterName(int index) const {
    checkGlobalParameterIndex(index);
    return globalParameters[index].name;
}

void MRLForce::setGlobalParameterName(int index, const std::string& name) {
    checkGlobalParameterIndex(index);
    globalParameters[index].name = name;
}

double MRLForce::getGlobalParameterDefaultValue(int index) const {
    checkGlobalParameterIndex(index);
    return globalParameters[index].defaultValue;
}

void MRLForce::setGlobalParameterDefaultValue(int index, double defaultValue) {
    checkGlobalParameterIndex(index);
    globalParameters[index].defaultValue = defaultValue;
}

void MRLForce::addEnergyParameterDerivative(const std::string& name) {
    energyParameterDerivatives.push_back(name);
}

const std::string& MRLForce::getEnergyParameterDerivativeName(int index) const {
    if (index < 0 || index >= getNumEnergyParameterDerivatives())
        throw OpenMMException("MRLForce: energy parameter derivative index " + std::to_string(index) +
                              " is out of range.");
    return energyParameterDerivatives[index];
}

std::vector<std::string> MRLForce::getPropertyNames() {
    return MRLSettings::getPropertyNames();
}

void MRLForce::setProperty(const std::string& name, const std::string& value) {
    settings.set(name, value);
    properties[name] = value;
}

ForceImpl* MRLForce::createImpl() const {
    return new MRLForceImpl(*this);
}
