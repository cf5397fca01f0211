// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_KERNELS_H_
#define COMMON_MRL_KERNELS_H_

#include "MRLKernels.h"
#include "internal/MRLEvaluator.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <memory>
#include <vector>

namespace MRLPlugin {

/**
 * Computes an MRLForce on the platforms built on OpenMM's ComputeContext (OpenCL and CUDA): a small kernel
 * gathers the ML atoms' positions from the context's position array (in its atom order and precision,
 * mixed precision included) into a compact array, only that array is copied to the host, the
 * MRLEvaluator runs the model there, and a second kernel adds the forces into the context's force buffer
 * (64-bit fixed point, or real4 where the device has no 64-bit atomics).
 */
class CommonCalcMRLForceKernel : public CalcMRLForceKernel {
public:
    CommonCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc)
        : CalcMRLForceKernel(name, platform), cc(cc) {}
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;

private:
    class AtomOrderListener;
    void updateAtomOrder();
    OpenMM::ComputeContext& cc;
    std::unique_ptr<MRLEvaluator> evaluator;
    std::vector<int> particles, slotOfParticle; // ML atoms (System indices); ML slot of each particle or -1
    std::vector<double> positionBuffer, forceBuffer, globalBuffer;
    std::vector<float> singleBuffer; // host staging when the device arrays hold floats
    bool atomOrderChanged = true;
    OpenMM::ComputeArray mlPositions, mlForces, mlDeviceIndex;
    OpenMM::ComputeKernel gatherKernel, addForcesKernel;
};

} // namespace MRLPlugin

#endif // COMMON_MRL_KERNELS_H_
