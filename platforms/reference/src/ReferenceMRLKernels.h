// SPDX-License-Identifier: MIT
#ifndef REFERENCE_MRL_KERNELS_H_
#define REFERENCE_MRL_KERNELS_H_

#include "MRLKernels.h"
#include "MRLNeighborList.h"
#include "openmm/Platform.h"
#include <memory>
#include <torch/script.h>
#include <vector>

namespace MRLPlugin {

/**
 * Computes an MRLForce on the Reference and CPU platforms: positions are copied into persistent
 * tensors, the model runs through LibTorch, and -dE/dx (or the model's forces) is added to the
 * platform's force array.
 */
class ReferenceCalcMRLForceKernel : public CalcMRLForceKernel {
public:
    ReferenceCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform)
        : CalcMRLForceKernel(name, platform) {}
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;

private:
    void copyPositionsToTensor(OpenMM::ContextImpl& context);
    void updateGraph(const OpenMM::Vec3* box);
    std::vector<torch::jit::IValue> buildInputs(OpenMM::ContextImpl& context, const OpenMM::Vec3* box);
    void addForces(OpenMM::ContextImpl& context, const torch::Tensor& forces, double sign);
    torch::jit::Module module;
    torch::ScalarType dtype = torch::kFloat64;
    std::string interface;
    bool periodic = false, outputsForces = false;
    int numThreads = 0;
    std::vector<int> particles;
    std::vector<double> positionBuffer; // ML atoms, nm
    torch::Tensor positions, box, atomicNumbers, moleculeIndices, edgeIndex, edgeShift;
    std::vector<std::string> globalNames;
    std::vector<torch::Tensor> globalValues;
    std::vector<int> derivativeOfGlobal; // global parameter index of each requested derivative
    std::unique_ptr<MRLNeighborList> neighborList;
    double cutoff = 0.0;
    std::vector<int64_t> keptSources, keptTargets; // edges within the cutoff this step
    std::vector<double> keptShifts;
};

} // namespace MRLPlugin

#endif // REFERENCE_MRL_KERNELS_H_
