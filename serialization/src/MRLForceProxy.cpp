// SPDX-License-Identifier: MIT
#include "MRLForceProxy.h"
#include "MRLForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/serialization/SerializationNode.h"

using namespace MRLPlugin;
using namespace OpenMM;

static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string MRLPlugin::encodeBase64(const std::string& bytes) {
    std::string text;
    text.reserve(4 * ((bytes.size() + 2) / 3));
    for (size_t i = 0; i < bytes.size(); i += 3) {
        unsigned int chunk = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size())
            chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size())
            chunk |= static_cast<unsigned char>(bytes[i + 2]);
        text += alphabet[(chunk >> 18) & 63];
        text += alphabet[(chunk >> 12) & 63];
        text += i + 1 < bytes.size() ? alphabet[(chunk >> 6) & 63] : '=';
        text += i + 2 < bytes.size() ? alphabet[chunk & 63] : '=';
    }
    return text;
}

std::string MRLPlugin::decodeBase64(const std::string& text) {
    int value[256];
    for (int& v : value)
        v = -1;
    for (int i = 0; i < 64; i++)
        value[static_cast<unsigned char>(alphabet[i])] = i;
    std::string bytes;
    bytes.reserve(3 * text.size() / 4);
    unsigned int chunk = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=')
            break;
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
            continue;
        int v = value[static_cast<unsigned char>(c)];
        if (v < 0)
            throw OpenMMException("MRLForce: the serialized model is not valid base64 (unexpected character '" +
                                  std::string(1, c) + "'). The XML file is damaged.");
        chunk = (chunk << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes += static_cast<char>((chunk >> bits) & 0xFF);
        }
    }
    return bytes;
}

MRLForceProxy::MRLForceProxy() : SerializationProxy("MRLForce") {
}

static void writeList(SerializationNode& parent, const std::string& name, const std::vector<int>& values) {
    SerializationNode& list = parent.createChildNode(name);
    for (int v : values)
        list.createChildNode("Item").setIntProperty("v", v);
}

static std::vector<int> readList(const SerializationNode& parent, const std::string& name) {
    std::vector<int> values;
    for (const SerializationNode& item : parent.getChildNode(name).getChildren())
        values.push_back(item.getIntProperty("v"));
    return values;
}

void MRLForceProxy::serialize(const void* object, SerializationNode& node) const {
    node.setIntProperty("version", 1);
    const MRLForce& force = *reinterpret_cast<const MRLForce*>(object);
    node.setStringProperty("name", force.getName());
    node.setIntProperty("forceGroup", force.getForceGroup());
    node.setStringProperty("file", force.getFile());
    node.setBoolProperty("usesPeriodic", force.usesPeriodicBoundaryConditions());
    node.setBoolProperty("outputsForces", force.getOutputsForces());
    node.setStringProperty("model", encodeBase64(force.getModelBytes()));
    writeList(node, "Particles", force.getParticles());
    writeList(node, "AtomicNumbers", force.getAtomicNumbers());
    writeList(node, "MoleculeIndices", force.getMoleculeIndices());
    SerializationNode& globals = node.createChildNode("GlobalParameters");
    for (int i = 0; i < force.getNumGlobalParameters(); i++)
        globals.createChildNode("Parameter")
            .setStringProperty("name", force.getGlobalParameterName(i))
            .setDoubleProperty("default", force.getGlobalParameterDefaultValue(i));
    SerializationNode& derivatives = node.createChildNode("EnergyParameterDerivatives");
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        derivatives.createChildNode("Parameter").setStringProperty("name", force.getEnergyParameterDerivativeName(i));
    SerializationNode& properties = node.createChildNode("Properties");
    for (const auto& [name, value] : force.getProperties())
        properties.createChildNode("Property").setStringProperty("name", name).setStringProperty("value", value);
}

void* MRLForceProxy::deserialize(const SerializationNode& node) const {
    int version = node.getIntProperty("version");
    if (version != 1)
        throw OpenMMException("MRLForce: unsupported serialization version " + std::to_string(version) +
                              " (this plugin reads version 1). Update openmm-mrl.");
    std::string bytes = decodeBase64(node.getStringProperty("model"));
    MRLForce* force = new MRLForce(bytes.data(), bytes.size());
    try {
        force->setName(node.getStringProperty("name", force->getName()));
        force->setForceGroup(node.getIntProperty("forceGroup", 0));
        force->setUsesPeriodicBoundaryConditions(node.getBoolProperty("usesPeriodic"));
        force->setOutputsForces(node.getBoolProperty("outputsForces"));
        force->setParticles(readList(node, "Particles"));
        force->setAtomicNumbers(readList(node, "AtomicNumbers"));
        force->setMoleculeIndices(readList(node, "MoleculeIndices"));
        for (const SerializationNode& parameter : node.getChildNode("GlobalParameters").getChildren())
            force->addGlobalParameter(parameter.getStringProperty("name"), parameter.getDoubleProperty("default"));
        for (const SerializationNode& parameter : node.getChildNode("EnergyParameterDerivatives").getChildren())
            force->addEnergyParameterDerivative(parameter.getStringProperty("name"));
        for (const SerializationNode& property : node.getChildNode("Properties").getChildren())
            force->setProperty(property.getStringProperty("name"), property.getStringProperty("value"));
    } catch (...) {
        delete force;
        throw;
    }
    return force;
}
