// SPDX-License-Identifier: MIT
#ifndef CUDA_MRL_KERNELS_H_
#define CUDA_MRL_KERNELS_H_

#include "CommonMRLKernels.h"
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <memory>

namespace OpenMM {
class CudaContext;
}

namespace MRLPlugin {

/**
 * The common kernel with the model on the GPU (zero copy).
 *
 * The positions, forces, energy and neighbor-list arrays are LibTorch tensors on the context's GPU; OpenMM's
 * kernels read and write them through their device pointers (the gather kernel fills the positions from
 * OpenMM's position buffer, the force kernel adds the model's forces into OpenMM's fixed-point buffer, and
 * the energy goes into OpenMM's energy buffer), so nothing crosses to the host each step except the
 * neighbor-list summary (4 integers, waited for after the model is queued).
 *
 * OpenMM 8.6 runs each Context in its own CUDA context (cuCtxCreate) on that context's stream 0, while
 * LibTorch works in the device's primary context, so LibTorch cannot launch on OpenMM's stream.  The model
 * runs instead on a stream of this kernel's own (one per MRLForce and Context, shared with nothing else in
 * the process), ordered after OpenMM's work by an event and before OpenMM's next work by another: the
 * ordering stays on the GPU, with no host synchronisation, and the primary context is current only while
 * LibTorch runs.  With the UseCUDAGraphs property the model's forward and backward pass (and the copies
 * into the shared arrays) are captured once, after CUDAGraphWarmupSteps eager steps, and replayed.
 */
class CudaCalcMRLForceKernel : public CommonCalcMRLForceKernel {
public:
    CudaCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::CudaContext& cu);
    ~CudaCalcMRLForceKernel() override;
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;

protected:
    torch::Device modelDevice() const override;
    std::unique_ptr<TorchGuard> guardTorch() override;
    void runModelOnDevice(bool includeForces) override;
    int* hostSummary() override { return pinnedSummary; }
    void sharedArraysChanged() override;

private:
    void runModel(bool includeForces);
    void captureGraph();
    OpenMM::CudaContext& cu;
    CUcontext primaryContext = nullptr;
    CUstream modelStream = nullptr;
    CUevent inputsReady = nullptr, modelDone = nullptr;
    int* pinnedSummary = nullptr;
    bool useGraphs = false;
    int warmupSteps = 2, eagerSteps = 0;
    std::unique_ptr<at::cuda::CUDAGraph> graph;
};

} // namespace MRLPlugin

#endif // CUDA_MRL_KERNELS_H_
