// SPDX-License-Identifier: MIT
// Fuzz target: a model file's bytes (TorchScript archives) as MRLForce(const char*, size_t) reads them, then the
// force in a Reference Context of four atoms (two molecules; atomic numbers for "graph/1" models).
#include "FuzzUtilities.h"
#include "MRLForce.h"
#include "openmm/OpenMMException.h"
#include <memory>

using namespace OpenMM;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto force = std::make_unique<MRLPlugin::MRLForce>(reinterpret_cast<const char*>(data), size);
        if (force->getModelInterface() == MRLPlugin::ModelInterface::Graph1) {
            force->setAtomicNumbers({6, 1, 8, 1});
            force->setMoleculeIndices({0, 0, 1, 1});
        }
        MRLFuzz::evaluateInContext(force.release(), 4);
    } catch (const OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    return 0;
}
