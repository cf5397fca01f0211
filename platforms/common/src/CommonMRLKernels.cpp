// SPDX-License-Identifier: MIT
#include "CommonMRLKernels.h"
#include "CommonMRLKernelSources.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ComputeForceInfo.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/internal/ContextImpl.h"

using namespace MRLPlugin;
using namespace OpenMM;

namespace {

/**
 * Tells the context which particles it may swap when it reorders atoms: an ML atom only with an ML atom
 * of the same element, and each ML molecule is kept together as a group.  It refers to what the kernel
 * owns and holds nothing itself: the context deletes it through a ComputeForceInfo*, whose destructor is
 * not virtual, so members of its own (vectors) would never be freed.
 */
class MRLForceInfo : public ComputeForceInfo {
public:
    MRLForceInfo(const std::vector<int>& slotOfParticle, const std::vector<int>& atomicNumbers,
                 const std::vector<std::vector<int>>& groups)
        : slot(slotOfParticle), atomicNumbers(atomicNumbers), groups(groups) {}
    bool areParticlesIdentical(int p1, int p2) override {
        int a = slot[p1], b = slot[p2];
        if (a < 0 || b < 0)
            return a == b;
        return atomicNumbers[a] == atomicNumbers[b];
    }
    int getNumParticleGroups() override { return static_cast<int>(groups.size()); }
    void getParticlesInGroup(int index, std::vector<int>& particles) override { particles = groups[index]; }
    bool areGroupsIdentical(int group1, int group2) override { return group1 == group2; }

private:
    const std::vector<int>& slot;
    const std::vector<int>& atomicNumbers;
    const std::vector<std::vector<int>>& groups;
};

} // namespace

/** Marks the ML atoms' device indices stale when the context reorders its atoms. */
class CommonCalcMRLForceKernel::AtomOrderListener : public ComputeContext::ReorderListener {
public:
    explicit AtomOrderListener(bool& changed) : changed(changed) {}
    void execute() override { changed = true; }

private:
    bool& changed;
};

/**
 * When energy is asked for, the device path's status is checked within the same evaluation (after every
 * force is queued, so the wait costs almost nothing): a non-finite ML energy is never returned quietly.
 */
class CommonCalcMRLForceKernel::StatusCheck : public ComputeContext::ForcePostComputation {
public:
    StatusCheck(CommonCalcMRLForceKernel& owner, int forceGroup) : owner(owner), forceGroup(forceGroup) {}
    double computeForceAndEnergy(bool /*includeForces*/, bool includeEnergy, int groups) override {
        if (includeEnergy && (groups & (1 << forceGroup)) != 0)
            owner.checkStatus();
        return 0.0;
    }

private:
    CommonCalcMRLForceKernel& owner;
    int forceGroup;
};

/** Holds the subclass's TorchGuard while LibTorch runs. */
class CommonCalcMRLForceKernel::TorchScope {
public:
    explicit TorchScope(CommonCalcMRLForceKernel& owner) : guard(owner.guardTorch()) {}

private:
    std::unique_ptr<TorchGuard> guard;
};

void CommonCalcMRLForceKernel::allocateShared(SharedArray& shared, const std::vector<int64_t>& shape,
                                              torch::ScalarType type, const std::string& name) {
    torch::TensorOptions options = torch::TensorOptions().dtype(type);
    // On the device the arrays are only allocated (torch::empty): OpenMM's queue writes every element before
    // the model reads it, and a fill queued on the model's stream would race with those writes.
    if (onDevice()) {
        shared.tensor = torch::empty(shape, options.device(modelDevice()));
        return;
    }
    shared.tensor = torch::zeros(shape, options);
    int size = std::max<int>(1, static_cast<int>(shared.tensor.numel()));
    if (shared.array.isInitialized())
        shared.array.resize(size);
    else
        shared.array.initialize(cc, size, static_cast<int>(shared.tensor.element_size()), name);
}

void CommonCalcMRLForceKernel::initialize(const System& system, const MRLForce& force, const MRLRegion& region) {
    ContextSelector selector(cc);
    numML = static_cast<int>(region.particles.size());
    slotOfParticle.assign(system.getNumParticles(), -1);
    for (int i = 0; i < numML; i++)
        slotOfParticle[region.particles[i]] = i;
    createEvaluator(force, region);
    mlDeviceIndex.initialize<int>(cc, std::max(1, numML), "mlDeviceIndex");
    status.initialize<int>(cc, 1, "mlStatus");
    status.upload(std::vector<int>{0});
    statusEvent = cc.createEvent();
    createForceKernels();
    if (evaluator->usesNeighborList())
        createNeighborList();
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        cc.addEnergyParameterDerivative(force.getEnergyParameterDerivativeName(i));
    atomicNumbers = region.atomicNumbers;
    std::map<int, std::vector<int>> molecules;
    for (int i = 0; i < numML; i++)
        molecules[region.moleculeIndices[i]].push_back(region.particles[i]);
    for (auto& entry : molecules)
        moleculeParticles.push_back(entry.second);
    cc.addForce(new MRLForceInfo(slotOfParticle, atomicNumbers, moleculeParticles));
    cc.addPostComputation(new StatusCheck(*this, force.getForceGroup()));
    cc.addReorderListener(new AtomOrderListener(atomOrderChanged));
}

// The model, where it runs, and the arrays it shares with the device kernels.
void CommonCalcMRLForceKernel::createEvaluator(const MRLForce& force, const MRLRegion& region) {
    TorchScope scope(*this);
    // The model runs in double precision when the context does; in single for single and mixed.
    Precision platformPrecision = cc.getUseDoublePrecision() ? Precision::Double : Precision::Single;
    evaluator = std::make_unique<MRLEvaluator>(force, region, platformPrecision, modelDevice());
    torch::ScalarType dtype = evaluator->getDtype();
    allocateShared(positions, {numML, 3}, dtype, "mlPositions");
    positions.tensor.requires_grad_(!evaluator->getOutputsForces());
    allocateShared(forces, {numML, 3}, dtype, "mlForces");
    allocateShared(energy, {1}, dtype, "mlEnergy");
    boxTensor = torch::zeros({3, 3}, torch::TensorOptions().dtype(dtype).device(modelDevice()));
}

// The kernels of kernels/mrlForce.cc: positions out of the context, forces and energy into it.
void CommonCalcMRLForceKernel::createForceKernels() {
    bool longForces = cc.getLongForceBuffer().isInitialized();
    std::map<std::string, std::string> defines;
    defines["MLREAL"] = modelIsDouble() ? "double" : "float";
    if (longForces)
        defines["USE_LONG_FORCES"] = "1";
    if (cc.getUseMixedPrecision())
        defines["MRL_MIXED_PRECISION"] = "1";
    program = cc.compileProgram(CommonMRLKernelSources::mrlForce, defines);
    gatherKernel = program->createKernel("gatherMLPositions");
    gatherKernel->addArg(cc.getPosq());
    if (cc.getUseMixedPrecision())
        gatherKernel->addArg(cc.getPosqCorrection());
    gatherKernel->addArg(mlDeviceIndex);
    gatherKernel->addArg(numML);
    positions.addArgTo(gatherKernel);
    addForcesKernel = program->createKernel("addMLForces");
    forces.addArgTo(addForcesKernel);
    addForcesKernel->addArg(mlDeviceIndex);
    addForcesKernel->addArg(numML);
    if (longForces) {
        addForcesKernel->addArg(cc.getLongForceBuffer());
        addForcesKernel->addArg(cc.getPaddedNumAtoms());
    } else {
        addForcesKernel->addArg(cc.getFloatForceBuffer());
    }
    addForcesKernel->addArg(status);
    addEnergyKernel = program->createKernel("addMLEnergy");
    energy.addArgTo(addEnergyKernel);
    addEnergyKernel->addArg(cc.getEnergyBuffer());
    addEnergyKernel->addArg(status);
}

// The device neighbor list of a "graph/1" model; its edge arrays are the model's input, allocated as the
// model's other arrays are.
void CommonCalcMRLForceKernel::createNeighborList() {
    auto allocateEdges = [this](SharedArray& edgeIndex, SharedArray& edgeShift, int capacity) {
        TorchScope scope(*this);
        allocateShared(edgeIndex, {2, capacity}, torch::kInt64, "mlEdgeIndex");
        allocateShared(edgeShift, {capacity, 3}, evaluator->getDtype(), "mlEdgeShift");
        sharedArraysChanged();
    };
    neighborList = std::make_unique<CommonMRLNeighborList>(
        cc, positions, numML, evaluator->usesPeriodicBoundaryConditions(), evaluator->getCutoff(), evaluator->getSkin(),
        modelIsDouble(), hostSummary(), allocateEdges);
}

// Where each ML atom sits in the context's arrays: found again only after the context reorders atoms.
void CommonCalcMRLForceKernel::updateAtomOrder() {
    const std::vector<int>& order = cc.getAtomIndex();
    std::vector<int> deviceIndex(std::max(1, numML), 0);
    for (int j = 0; j < cc.getNumAtoms(); j++) {
        int slot = slotOfParticle[order[j]];
        if (slot >= 0)
            deviceIndex[slot] = j;
    }
    mlDeviceIndex.upload(deviceIndex);
    atomOrderChanged = false;
}

// A new periodic box goes to the neighbor list, or into the box tensor of "positions" models.
void CommonCalcMRLForceKernel::updateBox(ContextImpl& context) {
    if (!evaluator->usesPeriodicBoundaryConditions())
        return;
    Vec3 box[3];
    context.getPeriodicBoxVectors(box[0], box[1], box[2]);
    if (haveBox && box[0] == lastBox[0] && box[1] == lastBox[1] && box[2] == lastBox[2])
        return;
    for (int v = 0; v < 3; v++)
        lastBox[v] = box[v];
    haveBox = true;
    if (neighborList) {
        neighborList->setBox(box);
        return;
    }
    std::vector<double> values(9);
    for (int v = 0; v < 3; v++)
        for (int d = 0; d < 3; d++)
            values[3 * v + d] = box[v][d];
    TorchScope scope(*this);
    boxTensor.copy_(torch::tensor(values, torch::kFloat64).reshape({3, 3}).to(evaluator->getDtype()));
}

std::vector<torch::Tensor> CommonCalcMRLForceKernel::modelGeometry() const {
    if (neighborList)
        return neighborList->getEdges();
    if (evaluator->usesPeriodicBoundaryConditions())
        return {boxTensor};
    return {};
}

// The host path passes the model only the listed edges within the cutoff (as the Reference and CPU platforms
// do): the model does no work for skin and padding edges, and its input is the same as on those platforms.
double CommonCalcMRLForceKernel::runModelOnHost(bool includeForces) {
    positions.array.download(positions.tensor.data_ptr());
    std::vector<torch::Tensor> geometry = neighborList ? neighborList->edgesWithinCutoffOnHost() : modelGeometry();
    evaluator->setGlobals(globalBuffer);
    MRLModelOutput output = evaluator->run(positions.tensor, geometry, includeForces);
    double value = MRLEvaluator::checkedEnergy(output.energy);
    if (includeForces) {
        forces.array.upload(evaluator->checkedForces(output.forces, evaluator->getDtype()).data_ptr());
        addForcesKernel->execute(numML);
        evaluator->addDerivatives(output, cc.getEnergyParamDerivWorkspace());
    }
    return value;
}

double CommonCalcMRLForceKernel::executeOnDevice(bool includeForces, bool includeEnergy) {
    runModelOnDevice(includeForces);
    if (includeForces)
        addForcesKernel->execute(numML);
    if (includeEnergy)
        addEnergyKernel->execute(1);
    status.download(hostSummary() + 4, false);
    statusEvent->enqueue();
    statusPending = true;
    // The host waits for the neighbor-list summary only now, with the model already queued: the GPU never
    // idles for it.  A list that did not fit invalidates this step's forces, and OpenMM computes them again.
    if (neighborList && neighborList->overflowed()) {
        // This step is computed again: its status is dropped with it.
        statusEvent->wait();
        statusPending = false;
        status.upload(std::vector<int>{0});
        cc.setForcesValid(false);
        return 0.0;
    }
    if (includeForces && evaluator->hasDerivatives()) {
        TorchScope scope(*this);
        evaluator->addDerivatives(deviceOutput, cc.getEnergyParamDerivWorkspace());
    }
    return 0.0;
}

double CommonCalcMRLForceKernel::execute(ContextImpl& context, bool includeForces, bool includeEnergy) {
    ContextSelector selector(cc);
    if (numML == 0)
        return 0.0;
    checkStatus();
    if (atomOrderChanged)
        updateAtomOrder();
    updateBox(context);
    globalBuffer.clear();
    for (const std::string& name : evaluator->getGlobalParameterNames())
        globalBuffer.push_back(context.getParameter(name));
    gatherKernel->execute(numML);
    if (neighborList)
        neighborList->enqueue();
    if (onDevice())
        return executeOnDevice(includeForces, includeEnergy);
    while (neighborList && neighborList->overflowed())
        neighborList->enqueue();
    return runModelOnHost(includeForces);
}

// The device path checks the model's output on the GPU; the host reads the flag at the next step (by then
// it has long arrived) or, when energy is asked for, at the end of the same evaluation (StatusCheck).
void CommonCalcMRLForceKernel::checkStatus() {
    if (!statusPending)
        return;
    ContextSelector selector(cc);
    statusEvent->wait();
    statusPending = false;
    if (hostSummary()[4] != 0) {
        status.upload(std::vector<int>{0});
        throw OpenMMException("MRLForce: the model returned a non-finite energy or force on the GPU (in this "
                              "evaluation or the step before). Check the positions (overlapping atoms?), the time "
                              "step and the model.");
    }
}

void CommonCalcMRLForceKernel::releaseTensors() {
    deviceOutput = MRLModelOutput();
    for (SharedArray* shared : {&positions, &forces, &energy})
        shared->tensor = torch::Tensor();
    if (neighborList)
        neighborList->releaseTensors();
    boxTensor = torch::Tensor();
    evaluator.reset();
}
