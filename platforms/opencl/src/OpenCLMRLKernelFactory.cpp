// SPDX-License-Identifier: MIT
// The OpenCL platform's MRLForce kernel: the common kernel on the OpenCL context.
#include "CommonMRLKernels.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/internal/windowsExport.h"
#include "openmm/opencl/OpenCLContext.h"
#include "openmm/opencl/OpenCLPlatform.h"

using namespace MRLPlugin;
using namespace OpenMM;

namespace {

class OpenCLMRLKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        OpenCLPlatform::PlatformData& data = *static_cast<OpenCLPlatform::PlatformData*>(context.getPlatformData());
        if (name == CalcMRLForceKernel::Name())
            return new CommonCalcMRLForceKernel(name, platform, *data.contexts[0]);
        throw OpenMMException("OpenCLMRLKernelFactory: no kernel named '" + name + "'.");
    }
};

} // namespace

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    try {
        Platform& platform = Platform::getPlatformByName("OpenCL");
        platform.registerKernelFactory(CalcMRLForceKernel::Name(), new OpenCLMRLKernelFactory());
    } catch (const std::exception&) {
        // OpenMM was loaded without its OpenCL platform: nothing to register.
    }
}

extern "C" OPENMM_EXPORT void registerMRLOpenCLKernelFactories() {
    registerKernelFactories();
}
