// SPDX-License-Identifier: MIT
#include "ReferenceMRLKernelFactory.h"
#include "ReferenceMRLKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/windowsExport.h"
#include "openmm/reference/ReferencePlatform.h"

using namespace MRLPlugin;
using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    // The CPU platform derives from the Reference platform and shares its data, so one kernel serves both.
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<ReferencePlatform*>(&platform) != nullptr)
            platform.registerKernelFactory(CalcMRLForceKernel::Name(), new ReferenceMRLKernelFactory());
    }
}

extern "C" OPENMM_EXPORT void registerMRLReferenceKernelFactories() {
    registerKernelFactories();
}

KernelImpl* ReferenceMRLKernelFactory::createKernelImpl(std::string name, const Platform& platform,
                                                        ContextImpl& /*context*/) const {
    if (name == CalcMRLForceKernel::Name())
        return new ReferenceCalcMRLForceKernel(name, platform);
    throw OpenMMException("ReferenceMRLKernelFactory: no kernel named '" + name + "'.");
}
