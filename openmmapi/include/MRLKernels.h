// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLKERNELS_H_
#define OPENMM_MRLKERNELS_H_

#include "MRLForce.h"
#include "internal/MRLForceImpl.h"
#include "openmm/KernelImpl.h"
#include "openmm/Platform.h"
#include "openmm/System.h"
#include <string>

namespace MRLPlugin {

/**
 * The kernel that computes an MRLForce.  Each platform implements it.
 */
class CalcMRLForceKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "CalcMRLForce"; }
    CalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform)
        : OpenMM::KernelImpl(name, platform) {}
    /**
     * Initialize the kernel.
     *
     * @param system  the System this kernel will be applied to
     * @param force   the MRLForce this kernel will be used for
     * @param region  the force's ML region, resolved and checked
     */
    virtual void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) = 0;
    /**
     * Execute the kernel to calculate the forces and/or energy.
     *
     * @param context        the context in which to execute this kernel
     * @param includeForces  true if forces should be calculated
     * @param includeEnergy  true if the energy should be calculated
     * @return the potential energy due to the force, in kJ/mol
     */
    virtual double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) = 0;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLKERNELS_H_
