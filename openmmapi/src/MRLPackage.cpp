// SPDX-License-Identifier: MIT
#include "internal/MRLPackage.h"
#include "internal/MRLModel.h"
#include "openmm/OpenMMException.h"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/version.h>
#include <unistd.h>

using namespace MRLPlugin;
using OpenMM::OpenMMException;

static const std::string AOTI_DIRECTORY = "/data/aotinductor/";

bool MRLPlugin::isAOTInductorPackage(const std::vector<std::string>& members) {
    for (const std::string& name : members)
        if (name.find(AOTI_DIRECTORY) != std::string::npos)
            return true;
    return false;
}

/** The bytes in a new file of the temporary directory ($TMPDIR or /tmp), which LibTorch's loader reads. */
static std::string writeTemporaryFile(const std::string& bytes, const std::string& source) {
    const char* directory = std::getenv("TMPDIR");
    std::string pattern = std::string(directory && *directory ? directory : "/tmp") + "/openmm-mrl-XXXXXX.pt2";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    int fd = mkstemps(name.data(), 4);
    if (fd < 0)
        throw OpenMMException("MRLForce: cannot create a temporary file for " + source + " in " + pattern +
                              "; set TMPDIR to a writable directory.");
    close(fd);
    std::string path(name.data());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
        std::remove(path.c_str());
        throw OpenMMException("MRLForce: cannot write " + source + " to the temporary file " + path +
                              " (disk full?); set TMPDIR to a directory with space.");
    }
    return path;
}

MRLPackage::MRLPackage(const std::string& bytes, const std::vector<std::string>& members, const std::string& source)
    : source(source) {
    std::set<std::string> names;
    for (const std::string& member : members) {
        size_t at = member.find(AOTI_DIRECTORY);
        if (at == std::string::npos)
            continue;
        size_t start = at + AOTI_DIRECTORY.size(), end = member.find('/', start);
        if (end != std::string::npos && end > start)
            names.insert(member.substr(start, end - start));
    }
    modelNames.assign(names.begin(), names.end());
    if (modelNames.empty())
        throw OpenMMException("MRLForce: " + source +
                              " is an AOTInductor package without a model. Export it again "
                              "with openmmmrl.export_pt2.");
    path = writeTemporaryFile(bytes, source);
    for (const std::string& model : modelNames) {
        try {
            auto values = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, model);
            metadata[model] = std::map<std::string, std::string>(values.begin(), values.end());
        } catch (const std::exception& e) {
            std::remove(path.c_str());
            throw OpenMMException("MRLForce: cannot read the metadata of the model \"" + model + "\" of " + source +
                                  " (" + describeTorchError(e) +
                                  "). Export the package again with openmmmrl.export_pt2.");
        }
    }
}

MRLPackage::~MRLPackage() {
    if (!path.empty())
        std::remove(path.c_str());
}

std::string MRLPackage::getMetadata(const std::string& model, const std::string& key) const {
    auto entries = metadata.find(model);
    if (entries == metadata.end())
        return "";
    auto value = entries->second.find(key);
    return value == entries->second.end() ? "" : value->second;
}

std::string MRLPackage::getSetting(const std::string& key) const {
    std::string value = getMetadata(modelNames[0], key);
    if (value.empty())
        throw OpenMMException("MRLForce: " + source + " is an AOTInductor package without the metadata \"" + key +
                              "\" that MRLForce needs (model settings travel in the package's metadata). Export it "
                              "with openmmmrl.export_pt2, or pass the settings as "
                              "inductor_configs={\"aot_inductor.metadata\": {...}} (docs/model-interface.md).");
    for (const std::string& model : modelNames)
        if (getMetadata(model, key) != value)
            throw OpenMMException("MRLForce: the models of " + source + " disagree about \"" + key + "\" (\"" + value +
                                  "\" in \"" + modelNames[0] + "\", \"" + getMetadata(model, key) + "\" in \"" + model +
                                  "\"). Export all of them from one module with openmmmrl.export_pt2.");
    return value;
}

std::unique_ptr<torch::inductor::AOTIModelPackageLoader> MRLPackage::load(const std::string& model,
                                                                          const torch::Device& device) const {
    if (metadata.count(model) == 0) {
        std::string names;
        for (const std::string& name : modelNames)
            names += (names.empty() ? "\"" : ", \"") + name + "\"";
        throw OpenMMException("MRLForce: " + source + " has no \"" + model + "\" model (it holds " + names +
                              "). Export the package with that dtype (openmmmrl.export_pt2(..., dtypes=(\"" + model +
                              "\",))) or set the force's Precision property to match one it holds.");
    }
    std::string built = getMetadata(model, "AOTI_DEVICE_KEY"), wanted = device.is_cuda() ? "cuda" : "cpu";
    if (!built.empty() && built != wanted)
        throw OpenMMException("MRLForce: " + source + " was compiled for " + built +
                              " but this platform runs the model on " + wanted +
                              ". Export the package again on a machine of this kind, for this device "
                              "(a .pt2 package is native code for one device).");
    std::string torchVersion = getMetadata(model, "mrl_torch_version");
    try {
        return std::make_unique<torch::inductor::AOTIModelPackageLoader>(
            path, model, false, 1, device.is_cuda() ? device.index() : static_cast<c10::DeviceIndex>(-1));
    } catch (const std::exception& e) {
        throw OpenMMException("MRLForce: cannot load the model \"" + model + "\" of " + source + " (" +
                              describeTorchError(e) + ")." +
                              (torchVersion.empty() || torchVersion == TORCH_VERSION
                                   ? ""
                                   : " It was built by torch " + torchVersion + "; this plugin uses torch " +
                                         std::string(TORCH_VERSION) + ".") +
                              " A .pt2 package runs only with the torch and on the machine kind it was built for: "
                              "export it again here.");
    }
}
