// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_KERNELS_H_
#define COMMON_MRL_KERNELS_H_

#include "CommonMRLNeighborList.h"
#include "CommonMRLSharedArray.h"
#include "MRLKernels.h"
#include "internal/MRLEvaluator.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeEvent.h"
#include "openmm/common/ComputeKernel.h"
#include "openmm/common/ComputeProgram.h"
#include <memory>
#include <vector>

namespace MRLPlugin {

/**
 * Computes an MRLForce on the platforms built on OpenMM's ComputeContext (OpenCL and CUDA).
 *
 * Device kernels (kernels/mrlForce.cc) gather the ML atoms' positions from the context (in its atom order and
 * precision, mixed precision included) into a compact array in the model's precision and add the model's
 * forces into the context's force buffer (64-bit fixed point, or real4 where the device has no 64-bit
 * atomics).  "graph/1" models get their neighbor list from a CommonMRLNeighborList, kept on the device in
 * arrays of a fixed capacity.
 *
 * Where the model runs is the subclass's choice.  Here (OpenCL) it runs on the host: the positions are
 * downloaded each step, the neighbor list only on the steps that rebuild it (the model gets the listed
 * edges within the cutoff, as on Reference and CPU), and the forces uploaded.
 * CudaCalcMRLForceKernel runs it on the GPU with the arrays shared with LibTorch (runModelOnDevice).
 */
class CommonCalcMRLForceKernel : public CalcMRLForceKernel {
public:
    CommonCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc)
        : CalcMRLForceKernel(name, platform), cc(cc) {}
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;
    /** What a subclass holds while LibTorch runs (the CUDA kernel: its CUDA context and stream). */
    struct TorchGuard {
        virtual ~TorchGuard() = default;
    };

protected:
    using SharedArray = CommonMRLSharedArray;
    /** Where the model runs: the CPU (default) or the context's GPU. */
    virtual torch::Device modelDevice() const { return torch::Device(torch::kCPU); }
    /** Called around every use of LibTorch in this class; the guard lives until LibTorch is done. */
    virtual std::unique_ptr<TorchGuard> guardTorch() { return nullptr; }
    /**
     * Run the model on the device, called with the compute context current: the positions (and the
     * neighbor list) are in the shared arrays and the global parameters in globalBuffer.  Write the forces
     * into `forces` and the energy into `energy`, keep the model's outputs in deviceOutput (their parameter
     * derivatives are read from there), and order the context's queue after them.
     */
    virtual void runModelOnDevice(bool /*includeForces*/) {}
    /**
     * Host memory that the device summaries are downloaded into: 4 ints of the neighbor list, then the
     * status flag (a non-finite energy or force).  Pinned on CUDA.
     */
    virtual int* hostSummary() { return summaryStorage; }
    /** Called with LibTorch guarded when the shared arrays have been reallocated (a CUDA graph is captured again). */
    virtual void sharedArraysChanged() {}

    /** The model's inputs after the positions: the neighbor list, the box, or nothing. */
    std::vector<torch::Tensor> modelGeometry() const;
    /** Drop every tensor this class holds, and the evaluator (the CUDA kernel does it with LibTorch guarded). */
    void releaseTensors();

    OpenMM::ComputeContext& cc;
    std::unique_ptr<MRLEvaluator> evaluator;
    std::vector<double> globalBuffer;      // this step's global parameter values
    SharedArray positions, forces, energy; // [N,3], [N,3], [1]
    torch::Tensor boxTensor;               // [3,3] for periodic "positions" models
    MRLModelOutput deviceOutput;           // the last runModelOnDevice()

private:
    class AtomOrderListener;
    class StatusCheck;
    class TorchScope;
    bool onDevice() const { return !modelDevice().is_cpu(); }
    bool modelIsDouble() const { return evaluator->getDtype() == torch::kFloat64; }
    void allocateShared(SharedArray& shared, const std::vector<int64_t>& shape, torch::ScalarType type,
                        const std::string& name);
    void createEvaluator(const MRLForce& force, const MRLRegion& region);
    void createForceKernels();
    void createNeighborList();
    void updateAtomOrder();
    void updateBox(OpenMM::ContextImpl& context);
    void checkStatus(); // the previous device step's status: throws if its model output was not finite
    double runModelOnHost(bool includeForces);
    double executeOnDevice(bool includeForces, bool includeEnergy);
    std::vector<int> slotOfParticle; // the ML slot of each particle, or -1
    // For the context's atom reordering (MRLForceInfo refers to them): per ML slot, and per ML molecule.
    std::vector<int> atomicNumbers;
    std::vector<std::vector<int>> moleculeParticles;
    bool atomOrderChanged = true;
    int numML = 0;
    int summaryStorage[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    bool statusPending = false;
    OpenMM::Vec3 lastBox[3];
    bool haveBox = false;
    std::unique_ptr<CommonMRLNeighborList> neighborList; // "graph/1" models
    OpenMM::ComputeArray mlDeviceIndex, status;
    OpenMM::ComputeProgram program;
    OpenMM::ComputeKernel gatherKernel, addForcesKernel, addEnergyKernel;
    OpenMM::ComputeEvent statusEvent;
};

} // namespace MRLPlugin

#endif // COMMON_MRL_KERNELS_H_
