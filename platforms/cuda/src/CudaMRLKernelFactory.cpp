// SPDX-License-Identifier: MIT
// The CUDA platform's MRLForce kernel: for now the common kernel on the CUDA context (positions read from
// OpenMM's buffers, the model run by LibTorch on the host, forces added by a kernel).  Zero-copy tensors
// and CUDA graphs are still to come; nothing here has run on a GPU yet.
#include "CommonMRLKernels.h"
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
            return new CommonCalcMRLForceKernel(name, platform, *data.contexts[0]);
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
