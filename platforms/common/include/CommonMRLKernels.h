// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_KERNELS_H_
#define COMMON_MRL_KERNELS_H_

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
 * Device kernels gather the ML atoms' positions from the context (in its atom order and precision, mixed
 * precision included) into a compact array in the model's precision, keep the "graph/1" neighbor list on
 * the device in arrays of a fixed capacity, and add the model's forces into the context's force buffer
 * (64-bit fixed point, or real4 where the device has no 64-bit atomics).
 *
 * Where the model runs is the subclass's choice.  Here (OpenCL) it runs on the host: the positions are
 * downloaded each step, the neighbor list only on the steps that rebuild it, and the forces uploaded.
 * CudaCalcMRLForceKernel runs it on the GPU with the arrays shared with LibTorch (runModelOnDevice).
 */
class CommonCalcMRLForceKernel : public CalcMRLForceKernel {
public:
    CommonCalcMRLForceKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc)
        : CalcMRLForceKernel(name, platform), cc(cc) {}
    void initialize(const OpenMM::System& system, const MRLForce& force, const MRLRegion& region) override;
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;

protected:
    /**
     * An array that the model reads or writes.  On the host path it is a ComputeArray with a CPU tensor to
     * stage it; on the device path it is a tensor on the model's device, which the kernels get as a raw
     * pointer (ComputeArray is not allocated).
     */
    struct SharedArray {
        OpenMM::ComputeArray array;
        torch::Tensor tensor;
    };
    /** Where the model runs: the CPU (default) or the context's GPU. */
    virtual torch::Device modelDevice() const { return torch::Device(torch::kCPU); }
    /** Called around the uses of LibTorch in this class (the CUDA kernel switches CUDA contexts there). */
    virtual void enterTorch() {}
    virtual void leaveTorch() {}
    /**
     * Run the model on the device, called with the compute context current: the positions (and the
     * neighbor list) are in the shared arrays and the global parameters in globalBuffer.  Write the forces
     * into `forces` and the energy into `energy`, order the context's queue after them, and return the
     * model's outputs (their parameter derivatives are read from there).
     */
    virtual MRLModelOutput runModelOnDevice(bool /*includeForces*/) { return {}; }
    /** Host memory that the neighbor-list summary is downloaded into (4 ints); pinned on CUDA. */
    virtual int* listInfoHost() { return listInfoStorage; }
    /** Called when the shared arrays have been reallocated (a CUDA graph must be captured again). */
    virtual void sharedArraysChanged() {}

    /** The model's inputs after the positions: the neighbor list, the box, or nothing. */
    std::vector<torch::Tensor> modelGeometry() const;

    OpenMM::ComputeContext& cc;
    std::unique_ptr<MRLEvaluator> evaluator;
    std::vector<double> globalBuffer;                            // this step's global parameter values
    SharedArray positions, forces, energy, edgeIndex, edgeShift; // [N,3], [N,3], [1], [2,C] int64, [C,3]
    torch::Tensor boxTensor;                                     // [3,3] for periodic "positions" models

private:
    class AtomOrderListener;
    class TorchScope;
    bool onDevice() const { return !modelDevice().is_cpu(); }
    void allocateShared(SharedArray& shared, const std::vector<int64_t>& shape, torch::ScalarType type,
                        const std::string& name);
    void addSharedArg(OpenMM::ComputeKernel& kernel, SharedArray& shared);
    void updateAtomOrder();
    void updateBox(OpenMM::ContextImpl& context);
    void setListCapacity(int capacity);
    void enqueueNeighborList();
    bool listOverflowed(); // after the list event: true if this step's list did not fit (capacity grown)
    double runModelOnHost(bool includeForces);
    std::vector<int> particles, slotOfParticle; // ML atoms (System indices); ML slot of each particle or -1
    std::vector<double> boxBuffer;
    bool atomOrderChanged = true, modelRealIsDouble = true, periodic = false, forceRebuild = true;
    bool listRebuilt = false;
    int numML = 0, capacity = 0, pendingCapacity = 0;
    double reach = 0.0, skin = 0.0;
    int listInfoStorage[4] = {0, 0, 0, 0};
    OpenMM::Vec3 lastBox[3];
    OpenMM::ComputeArray mlDeviceIndex, refPositions, neighborSlots, listInfo, boxVectors;
    OpenMM::ComputeProgram program;
    OpenMM::ComputeKernel gatherKernel, addForcesKernel, addEnergyKernel;
    OpenMM::ComputeKernel checkKernel, countKernel, scanKernel, writeKernel;
    OpenMM::ComputeEvent listEvent;
};

} // namespace MRLPlugin

#endif // COMMON_MRL_KERNELS_H_
