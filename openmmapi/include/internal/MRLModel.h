// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLMODEL_H_
#define OPENMM_MRLMODEL_H_

#include "MRLModelInterface.h"
#include "internal/windowsExportMRL.h"
#include <string>
#include <torch/script.h>

namespace MRLPlugin {

/**
 * Load a TorchScript module from its bytes onto the CPU.  Throws an OpenMMException naming the source
 * (a file name or "model bytes") if the bytes are not a TorchScript model.
 */
OPENMM_EXPORT_MRL torch::jit::Module loadModel(const std::string& bytes, const std::string& source);

/**
 * Convert the floating-point parameters and buffers of a module to a dtype, leaving integer buffers (atom
 * types, index tables) alone, as torch.nn.Module.to(dtype) does in Python.
 */
OPENMM_EXPORT_MRL void convertFloatingPoint(torch::jit::Module& module, torch::ScalarType dtype);

/** The first line of a LibTorch error, with the C++ backtrace that LibTorch appends removed. */
OPENMM_EXPORT_MRL std::string describeTorchError(const std::exception& error);

/** The number of arguments of the module's forward method, not counting self. */
OPENMM_EXPORT_MRL int getNumForwardArguments(const torch::jit::Module& module);

/**
 * The number of forward arguments that a model with this interface must take, given whether
 * the force uses periodic boundary conditions and its number of global parameters.
 */
OPENMM_EXPORT_MRL int getExpectedNumForwardArguments(ModelInterface interface, bool periodic, int numGlobalParameters);

/** A human-readable description of the forward arguments expected for an interface. */
OPENMM_EXPORT_MRL std::string describeExpectedForward(ModelInterface interface, bool periodic, int numGlobalParameters);

} // namespace MRLPlugin

#endif // OPENMM_MRLMODEL_H_
