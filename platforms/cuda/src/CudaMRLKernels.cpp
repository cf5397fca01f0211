// SPDX-License-Identifier: MIT
#include "CudaMRLKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/cuda/CudaContext.h"
#include <c10/cuda/CUDAGuard.h>

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

static std::string propertyOr(const MRLForce& force, const std::string& name, const std::string& fallback) {
    auto it = force.getProperties().find(name);
    return it == force.getProperties().end() || it->second.empty() ? fallback : it->second;
}

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

/** LibTorch's side for its lifetime: the primary context current and the model stream LibTorch's stream. */
class CudaCalcMRLForceKernel::TorchSide {
public:
    explicit TorchSide(CudaCalcMRLForceKernel& owner) : owner(owner) { owner.enterTorch(); }
    ~TorchSide() { owner.leaveTorch(); }
    TorchSide(const TorchSide&) = delete;
    TorchSide& operator=(const TorchSide&) = delete;

private:
    CudaCalcMRLForceKernel& owner;
};

CudaCalcMRLForceKernel::CudaCalcMRLForceKernel(const std::string& name, const Platform& platform, CudaContext& cu)
    : CommonCalcMRLForceKernel(name, platform, cu), cu(cu) {
    check(cuDevicePrimaryCtxRetain(&primaryContext, cu.getDevice()), "cuDevicePrimaryCtxRetain");
}

CudaCalcMRLForceKernel::~CudaCalcMRLForceKernel() {
    {
        PrimaryContextScope scope(primaryContext);
        if (modelStream != nullptr) {
            // Nothing may still run on the stream, and LibTorch's blocks of it go back before it is destroyed.
            cuStreamSynchronize(modelStream);
            c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(modelStream, modelDevice().index()));
            graph.reset();
            graphOutput = MRLModelOutput();
            for (SharedArray* shared : {&positions, &forces, &energy, &edgeIndex, &edgeShift})
                shared->tensor = torch::Tensor();
            boxTensor = torch::Tensor();
            evaluator.reset();
        }
        if (modelDone != nullptr)
            cuEventDestroy(modelDone);
        if (modelStream != nullptr)
            cuStreamDestroy(modelStream);
    }
    {
        ContextSelector selector(cu);
        if (inputsReady != nullptr)
            cuEventDestroy(inputsReady);
        if (pinnedListInfo != nullptr)
            cuMemFreeHost(pinnedListInfo);
    }
    cuDevicePrimaryCtxRelease(cu.getDevice());
}

torch::Device CudaCalcMRLForceKernel::modelDevice() const {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cu.getDeviceIndex()));
}

void CudaCalcMRLForceKernel::enterTorch() {
    check(cuCtxPushCurrent(primaryContext), "cuCtxPushCurrent");
    streamGuard.emplace(c10::cuda::getStreamFromExternal(modelStream, modelDevice().index()));
}

void CudaCalcMRLForceKernel::leaveTorch() {
    streamGuard.reset();
    CUcontext popped;
    cuCtxPopCurrent(&popped);
}

void CudaCalcMRLForceKernel::initialize(const System& system, const MRLForce& force, const MRLRegion& region) {
    useGraphs = propertyOr(force, "UseCUDAGraphs", "false") == "true";
    warmupSteps = std::stoi(propertyOr(force, "CUDAGraphWarmupSteps", "2"));
    {
        ContextSelector selector(cu);
        check(cuEventCreate(&inputsReady, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        check(cuMemHostAlloc(reinterpret_cast<void**>(&pinnedListInfo), 4 * sizeof(int), CU_MEMHOSTALLOC_PORTABLE),
              "cuMemHostAlloc");
        for (int i = 0; i < 4; i++)
            pinnedListInfo[i] = 0;
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
    graphOutput = MRLModelOutput();
    eagerSteps = 0;
}

// One model call on the current (model) stream, its forces and energy copied into the shared arrays.
MRLModelOutput CudaCalcMRLForceKernel::runModel(bool includeForces) {
    MRLModelOutput output = evaluator->run(positions.tensor, modelGeometry(), includeForces);
    torch::NoGradGuard noGrad;
    if (includeForces)
        forces.tensor.copy_(output.forces.reshape({evaluator->getNumAtoms(), 3}));
    energy.tensor.copy_(output.energy.detach().reshape({1}));
    return output;
}

MRLModelOutput CudaCalcMRLForceKernel::runModelOnDevice(bool includeForces) {
    CUstream openmmStream = cu.getCurrentStream();
    check(cuEventRecord(inputsReady, openmmStream), "cuEventRecord");
    MRLModelOutput output;
    {
        TorchSide side(*this);
        check(cuStreamWaitEvent(modelStream, inputsReady, 0), "cuStreamWaitEvent");
        evaluator->setGlobals(globalBuffer);
        if (!useGraphs) {
            output = runModel(includeForces);
        } else if (graph) {
            graph->replay();
            output = graphOutput;
        } else if (eagerSteps < warmupSteps) {
            output = runModel(true);
            eagerSteps++;
        } else {
            graph = std::make_unique<at::cuda::CUDAGraph>();
            try {
                graph->capture_begin();
                graphOutput = runModel(true);
                graph->capture_end();
            } catch (const std::exception& e) {
                graph.reset();
                throw OpenMMException(std::string("MRLForce: capturing the model in a CUDA graph failed (set the "
                                                  "UseCUDAGraphs property to false to run it without): ") +
                                      e.what());
            }
            graph->replay();
            output = graphOutput;
        }
        check(cuEventRecord(modelDone, modelStream), "cuEventRecord");
    }
    // OpenMM's next work (adding the forces and energy) waits for the model on the GPU, not on the host.
    check(cuStreamWaitEvent(openmmStream, modelDone, 0), "cuStreamWaitEvent");
    return output;
}
