// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLPACKAGE_H_
#define OPENMM_MRLPACKAGE_H_

#include "internal/windowsExportMRL.h"
#include <map>
#include <memory>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace MRLPlugin {

/** True if an archive with these members (checkModelArchive's names) is an AOTInductor package (.pt2). */
bool isAOTInductorPackage(const std::vector<std::string>& members);

/**
 * An AOTInductor package (.pt2, written by openmmmrl.export_pt2) held in memory: its models (one per dtype,
 * named "float32" and "float64") and their metadata, read without loading native code.  load() compiles nothing:
 * it extracts and loads the named model's shared library.  See docs/model-interface.md, "AOTInductor packages".
 */
class OPENMM_EXPORT_MRL MRLPackage {
public:
    /**
     * @param bytes    the package file's bytes
     * @param members  its members' names (checkModelArchive)
     * @param source   what the bytes are, for messages ("the file 'x.pt2'")
     */
    MRLPackage(const std::string& bytes, const std::vector<std::string>& members, const std::string& source);
    ~MRLPackage();
    MRLPackage(const MRLPackage&) = delete;
    MRLPackage& operator=(const MRLPackage&) = delete;
    /** The names of the package's models, sorted. */
    const std::vector<std::string>& getModelNames() const { return modelNames; }
    /**
     * A metadata value that every model of the package must give, the same in all of them (a model setting:
     * "mrl_interface", "cutoff_nm", ...); throws naming the key and the fix if one lacks it or they differ.
     */
    std::string getSetting(const std::string& key) const;
    /** A metadata value of one model, or "" if it has none. */
    std::string getMetadata(const std::string& model, const std::string& key) const;
    /**
     * Load a model for a device.  Throws an OpenMMException if the package has no model of that name, was
     * compiled for another kind of device, or does not load (built by another torch, for another machine).
     *
     * @param model   "float32" or "float64"
     * @param device  the device the model runs on (CPU, or a CUDA device)
     */
    std::unique_ptr<torch::inductor::AOTIModelPackageLoader> load(const std::string& model,
                                                                  const torch::Device& device) const;

private:
    std::string path, source;
    std::vector<std::string> modelNames;
    std::map<std::string, std::map<std::string, std::string>> metadata;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLPACKAGE_H_
