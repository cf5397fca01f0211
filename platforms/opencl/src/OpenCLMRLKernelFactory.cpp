// SPDX-License-Identifier: MIT
// The OpenCL platform's MRLForce kernel: the common kernel on the OpenCL context.
#include "CommonMRLKernelFactory.h"
#include "CommonMRLKernels.h"
#include "openmm/internal/windowsExport.h"
#include "openmm/opencl/OpenCLContext.h"
#include "openmm/opencl/OpenCLPlatform.h"

using namespace MRLPlugin;
using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    registerCommonMRLKernelFactory<OpenCLPlatform::PlatformData, CommonCalcMRLForceKernel>("OpenCL");
}

extern "C" OPENMM_EXPORT void registerMRLOpenCLKernelFactories() {
    registerKernelFactories();
}
