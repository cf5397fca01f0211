// SPDX-License-Identifier: MIT
// The CUDA platform's MRLForce kernel: the common kernel with the model on the GPU (CudaMRLKernels.h).
#include "CommonMRLKernelFactory.h"
#include "CudaMRLKernels.h"
#include "openmm/cuda/CudaContext.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/windowsExport.h"

using namespace MRLPlugin;
using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    registerCommonMRLKernelFactory<CudaPlatform::PlatformData, CudaCalcMRLForceKernel>("CUDA");
}

extern "C" OPENMM_EXPORT void registerMRLCudaKernelFactories() {
    registerKernelFactories();
}
