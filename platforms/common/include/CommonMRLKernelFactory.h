// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_KERNEL_FACTORY_H_
#define COMMON_MRL_KERNEL_FACTORY_H_

#include "MRLKernels.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include <string>

namespace MRLPlugin {

/**
 * The kernel factory of a ComputeContext platform plugin (OpenCL, CUDA): it creates `Kernel` on the
 * platform's first context.  PlatformData is the platform's own (OpenCLPlatform::PlatformData, ...).
 */
template <class PlatformData, class Kernel> class CommonMRLKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override {
        PlatformData& data = *static_cast<PlatformData*>(context.getPlatformData());
        if (name == CalcMRLForceKernel::Name())
            return new Kernel(name, platform, *data.contexts[0]);
        throw OpenMM::OpenMMException("MRLForce: the " + platform.getName() + " plugin has no kernel named '" + name +
                                      "'.");
    }
};

/** Register the factory with the named platform; nothing happens if OpenMM was loaded without it. */
template <class PlatformData, class Kernel> void registerCommonMRLKernelFactory(const std::string& platformName) {
    try {
        OpenMM::Platform& platform = OpenMM::Platform::getPlatformByName(platformName);
        platform.registerKernelFactory(CalcMRLForceKernel::Name(), new CommonMRLKernelFactory<PlatformData, Kernel>());
    } catch (const std::exception&) {
        // The platform is absent: nothing to register.
    }
}

} // namespace MRLPlugin

#endif // COMMON_MRL_KERNEL_FACTORY_H_
