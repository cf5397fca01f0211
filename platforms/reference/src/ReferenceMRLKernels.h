// SPDX-License-Identifier: MIT
#ifndef REFERENCE_MRL_KERNELS_H_
#define REFERENCE_MRL_KERNELS_H_

#include "MRLKernels.h"
#include "internal/MRLEvaluator.h"
#include "openmm/Platform.h"
#include <memory>
#include <vector>

namespace MRLPlugin {

/**
 * Computes an MRLForce on the Reference and CPU platforms: the ML atoms' positions go to the
 * MRLEvaluator (LibTorch on the host) and its forces are added to the platform's force array.
 */
class ReferenceCalcMRLForceKernel : public CalcMRLForceKernel {
public:
    ReferenceCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform)
        : CalcMRLForceKernel(name, platform) {}
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;

private:
    std::unique_ptr<MRLEvaluator> evaluator;
    std::vector<int> particles;
    std::vector<double> positionBuffer, forceBuffer, globalBuffer; // ML atoms: nm, kJ/mol/nm
};

} // namespace MRLPlugin

#endif // REFERENCE_MRL_KERNELS_H_
