// SPDX-License-Identifier: MIT
// The CUDA platform's MRLForce kernel factory: the common kernel with the model on the GPU (CudaMRLKernels.h).
#include "CudaMRLKernels.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/cuda/CudaContext.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/internal/windowsExport.h"

using namespace MRLPlugin;
using namespace OpenMM;

namespace {

class CudaMRLKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        CudaPlatform::PlatformData& data = *static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
        if (name == CalcMRLForceKernel::Name())
            return new CudaCalcMRLForceKernel(name, platform, *data.contexts[0]);
        throw OpenMMException("CudaMRLKernelFactory: no kernel named '" + name + "'.");
    }
};

} // namespace

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    try {
        Platform& platform = Platform::getPlatformByName("CUDA");
        platform.registerKernelFactory(CalcMRLForceKernel::Name(), new CudaMRLKernelFactory());
    } catch (const std::exception&) {
        // OpenMM was loaded without its CUDA platform: nothing to register.
    }
}

extern "C" OPENMM_EXPORT void registerMRLCudaKernelFactories() {
    registerKernelFactories();
}
