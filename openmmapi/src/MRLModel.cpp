// SPDX-License-Identifier: MIT
#include "internal/MRLModel.h"
#include "internal/MRLArchive.h"
#include "openmm/OpenMMException.h"
#include <sstream>

using namespace MRLPlugin;
using OpenMM::OpenMMException;

torch::jit::Module MRLPlugin::loadModel(const std::string& bytes, const std::string& source) {
    checkModelArchive(bytes, source);
    std::istringstream stream(bytes);
    try {
        return torch::jit::load(stream, torch::kCPU);
    } catch (const std::exception& e) {
        std::string reason = describeTorchError(e);
        reason = reason.substr(0, reason.find('\n'));
        throw OpenMMException("MRLForce: " + source + " is not a TorchScript model (" + reason +
                              "). Save the model with torch.jit.save(torch.jit.script(model), path).");
    }
}

int MRLPlugin::getNumForwardArguments(const torch::jit::Module& module) {
    auto method = module.find_method("forward");
    if (!method)
        throw OpenMMException("MRLForce: the model has no forward method.");
    return static_cast<int>(method->function().getSchema().arguments().size()) - 1;
}

int MRLPlugin::getExpectedNumForwardArguments(ModelInterface interface, bool periodic, int numGlobalParameters) {
    if (interface == ModelInterface::Graph1)
        return 5 + numGlobalParameters;
    return 1 + (periodic ? 1 : 0) + numGlobalParameters;
}

std::string MRLPlugin::describeExpectedForward(ModelInterface interface, bool periodic, int numGlobalParameters) {
    std::string args = interface == ModelInterface::Graph1
                           ? "positions, atomic_numbers, molecule_index, edge_index, edge_shift"
                           : (periodic ? "positions, box" : "positions");
    for (int i = 0; i < numGlobalParameters; i++)
        args += ", global_parameter_" + std::to_string(i);
    return "forward(" + args + ")";
}

void MRLPlugin::convertFloatingPoint(torch::jit::Module& module, torch::ScalarType dtype) {
    torch::NoGradGuard noGrad;
    for (torch::Tensor parameter : module.parameters())
        if (parameter.is_floating_point())
            parameter.set_data(parameter.to(dtype));
    for (torch::Tensor buffer : module.buffers())
        if (buffer.is_floating_point())
            buffer.set_data(buffer.to(dtype));
}

std::string MRLPlugin::describeTorchError(const std::exception& error) {
    const c10::Error* torchError = dynamic_cast<const c10::Error*>(&error);
    std::string text = torchError ? torchError->what_without_backtrace() : error.what();
    size_t backtrace = text.find("\nException raised from");
    return backtrace == std::string::npos ? text : text.substr(0, backtrace);
}
