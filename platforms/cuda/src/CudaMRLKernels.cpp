// SPDX-License-Identifier: MIT
#include "CudaMRLKernels.h"
#include "internal/MRLModel.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/cuda/CudaContext.h"
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

using namespace MRLPlugin;
using namespace OpenMM;

static void check(CUresult result, const char* what) {
    if (result != CUDA_SUCCESS) {
        const char* name = nullptr;
        cuGetErrorName(result, &name);
        throw OpenMMException(std::string("MRLForce (CUDA): ") + what + " failed: " + (name ? name : "unknown error") +
                              ".");
    }
}

namespace {

/** Makes the device's primary context (LibTorch's) current for its lifetime. */
class PrimaryContextScope {
public:
    explicit PrimaryContextScope(CUcontext context) { check(cuCtxPushCurrent(context), "cuCtxPushCurrent"); }
    ~PrimaryContextScope() {
        CUcontext popped;
        cuCtxPopCurrent(&popped);
    }
    PrimaryContextScope(const PrimaryContextScope&) = delete;
    PrimaryContextScope& operator=(const PrimaryContextScope&) = delete;
};

/**
 * LibTorch's side: the primary context current, then the kernel's model stream as LibTorch's current stream;
 * undone in the reverse order.  Each scope holds its own, so scopes nest.
 */
class CudaTorchGuard : public CommonCalcMRLForceKernel::TorchGuard {
public:
    CudaTorchGuard(CUcontext context, CUstream stream, c10::DeviceIndex device)
        : context(context), stream(c10::cuda::getStreamFromExternal(stream, device)) {}

private:
    PrimaryContextScope context;
    c10::cuda::CUDAStreamGuard stream;
};

} // namespace

CudaCalcMRLForceKernel::CudaCalcMRLForceKernel(const std::string& name, const Platform& platform, CudaContext& cu)
    : CommonCalcMRLForceKernel(name, platform, cu), cu(cu) {
    check(cuDevicePrimaryCtxRetain(&primaryContext, cu.getDevice()), "cuDevicePrimaryCtxRetain");
}

// A destructor must not throw: errors are ignored here.  OpenMM's queue and the model stream are drained
// before the tensors that their kernels use go back to LibTorch.
CudaCalcMRLForceKernel::~CudaCalcMRLForceKernel() {
    if (cuCtxPushCurrent(cu.getContext()) == CUDA_SUCCESS) {
        cuStreamSynchronize(cu.getCurrentStream());
        if (inputsReady != nullptr)
            cuEventDestroy(inputsReady);
        if (pinnedSummary != nullptr)
            cuMemFreeHost(pinnedSummary);
        CUcontext popped;
        cuCtxPopCurrent(&popped);
    }
    if (cuCtxPushCurrent(primaryContext) == CUDA_SUCCESS) {
        if (modelStream != nullptr) {
            cuStreamSynchronize(modelStream);
            try {
                c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(modelStream, modelDevice().index()));
                graph.reset();
                releaseTensors();
            } catch (...) {
            }
            cuStreamDestroy(modelStream);
        }
        if (modelDone != nullptr)
            cuEventDestroy(modelDone);
        CUcontext popped;
        cuCtxPopCurrent(&popped);
    }
    cuDevicePrimaryCtxRelease(cu.getDevice());
}

torch::Device CudaCalcMRLForceKernel::modelDevice() const {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cu.getDeviceIndex()));
}

std::unique_ptr<CommonCalcMRLForceKernel::TorchGuard> CudaCalcMRLForceKernel::guardTorch() {
    return std::make_unique<CudaTorchGuard>(primaryContext, modelStream, modelDevice().index());
}

void CudaCalcMRLForceKernel::initialize(const System& system, const MRLForce& force, const MRLRegion& region) {
    useGraphs = force.getSettings().useCudaGraphs;
    // At least one eager step: cuBLAS handles and TorchScript's profiling happen before the capture.
    warmupSteps = std::max(1, force.getSettings().cudaGraphWarmupSteps);
    {
        ContextSelector selector(cu);
        check(cuEventCreate(&inputsReady, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        check(cuMemHostAlloc(reinterpret_cast<void**>(&pinnedSummary), 8 * sizeof(int), CU_MEMHOSTALLOC_PORTABLE),
              "cuMemHostAlloc");
        std::fill(pinnedSummary, pinnedSummary + 8, 0);
    }
    {
        PrimaryContextScope scope(primaryContext);
        check(cuStreamCreate(&modelStream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        check(cuEventCreate(&modelDone, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    }
    CommonCalcMRLForceKernel::initialize(system, force, region);
}

void CudaCalcMRLForceKernel::sharedArraysChanged() {
    graph.reset();
    deviceOutput = MRLModelOutput();
    eagerSteps = 0;
}

// One model call on the model stream, its forces and energy copied into the shared arrays.
void CudaCalcMRLForceKernel::runModel(bool includeForces) {
    deviceOutput = evaluator->run(positions.tensor, modelGeometry(), includeForces);
    torch::NoGradGuard noGrad;
    if (includeForces)
        forces.tensor.copy_(deviceOutput.forces.reshape({evaluator->getNumAtoms(), 3}));
    energy.tensor.copy_(deviceOutput.energy.detach().reshape({1}));
}

// Capture the model in a CUDA graph.  If the capture fails, capture_end() takes the stream out of capture
// mode and ends the allocator's routing into the graph's pool, and reset() gives the pool back (once), so
// that LibTorch stays usable; the error names the property.
void CudaCalcMRLForceKernel::captureGraph() {
    graph = std::make_unique<at::cuda::CUDAGraph>();
    bool capturing = false;
    try {
        graph->capture_begin();
        capturing = true;
        runModel(true);
        capturing = false;
        graph->capture_end();
    } catch (const std::exception& e) {
        if (capturing) {
            try {
                graph->capture_end();
            } catch (...) {
                // An invalidated capture: capture_end() has still ended it before reporting that.
            }
        }
        (void)cudaGetLastError();
        deviceOutput = MRLModelOutput();
        try {
            graph.reset();
        } catch (...) {
            (void)graph.release(); // leaked rather than terminating the process
        }
        throw OpenMMException(std::string("MRLForce: capturing the model in a CUDA graph failed (set the "
                                          "UseCUDAGraphs property to false to run it without): ") +
                              describeTorchError(e));
    }
}

void CudaCalcMRLForceKernel::runModelOnDevice(bool includeForces) {
    CUstream openmmStream = cu.getCurrentStream();
    check(cuEventRecord(inputsReady, openmmStream), "cuEventRecord");
    {
        CudaTorchGuard guard(primaryContext, modelStream, modelDevice().index());
        check(cuStreamWaitEvent(modelStream, inputsReady, 0), "cuStreamWaitEvent");
        evaluator->setGlobals(globalBuffer);
        if (!useGraphs) {
            runModel(includeForces);
        } else if (graph) {
            graph->replay(); // refreshes deviceOutput, the captured outputs, and the shared arrays
        } else if (eagerSteps < warmupSteps) {
            runModel(true);
            eagerSteps++;
        } else {
            captureGraph();
            graph->replay();
        }
        check(cuEventRecord(modelDone, modelStream), "cuEventRecord");
    }
    // OpenMM's next work (adding the forces and energy) waits for the model on the GPU, not on the host.
    check(cuStreamWaitEvent(openmmStream, modelDone, 0), "cuStreamWaitEvent");
}
