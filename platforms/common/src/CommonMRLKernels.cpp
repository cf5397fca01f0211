// SPDX-License-Identifier: MIT
#include "CommonMRLKernels.h"
#include "CommonMRLKernelSources.h"
#include "internal/MRLNeighborList.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ComputeForceInfo.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/internal/ContextImpl.h"

using namespace MRLPlugin;
using namespace OpenMM;

namespace {

/**
 * Tells the context which particles it may swap when it reorders atoms: an ML atom only with an ML atom
 * of the same element, and each ML molecule is kept together as a group.
 */
class MRLForceInfo : public ComputeForceInfo {
public:
    MRLForceInfo(const std::vector<int>& slotOfParticle, const MRLRegion& region)
        : slot(slotOfParticle), region(region) {
        std::map<int, std::vector<int>> molecules;
        for (size_t i = 0; i < region.particles.size(); i++)
            molecules[region.moleculeIndices[i]].push_back(region.particles[i]);
        for (auto& entry : molecules)
            groups.push_back(entry.second);
    }
    bool areParticlesIdentical(int p1, int p2) override {
        int a = slot[p1], b = slot[p2];
        if (a < 0 || b < 0)
            return a == b;
        return region.atomicNumbers[a] == region.atomicNumbers[b];
    }
    int getNumParticleGroups() override { return static_cast<int>(groups.size()); }
    void getParticlesInGroup(int index, std::vector<int>& particles) override { particles = groups[index]; }
    bool areGroupsIdentical(int group1, int group2) override { return group1 == group2; }

private:
    std::vector<int> slot;
    MRLRegion region;
    std::vector<std::vector<int>> groups;
};

const int GroupSize = 64;        // the work-group size of the one-group kernels (check, scan)
const int CapacityQuantum = 256; // edge capacities are multiples of this

// A capacity with room for a quarter more edges than `edges`.
int capacityFor(long long edges) {
    long long wanted = edges + edges / 4 + 64;
    return static_cast<int>((wanted + CapacityQuantum - 1) / CapacityQuantum * CapacityQuantum);
}

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

// The scalar kernel arguments in the model's precision.
template <typename Kernel> static void addReal(Kernel& kernel, bool isDouble, double value) {
    if (isDouble)
        kernel->addArg(value);
    else
        kernel->addArg(static_cast<float>(value));
}

template <typename Kernel> static void setReal(Kernel& kernel, int index, bool isDouble, double value) {
    if (isDouble)
        kernel->setArg(index, value);
    else
        kernel->setArg(index, static_cast<float>(value));
}

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

void CommonCalcMRLForceKernel::addSharedArg(ComputeKernel& kernel, SharedArray& shared) {
    if (onDevice())
        kernel->addArg(shared.tensor.data_ptr());
    else
        kernel->addArg(shared.array);
}

void CommonCalcMRLForceKernel::initialize(const System& system, const MRLForce& force, const MRLRegion& region) {
    ContextSelector selector(cc);
    numML = static_cast<int>(region.particles.size());
    slotOfParticle.assign(system.getNumParticles(), -1);
    for (int i = 0; i < numML; i++)
        slotOfParticle[region.particles[i]] = i;
    {
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
    reach = evaluator->getCutoff() + evaluator->getSkin();
    mlDeviceIndex.initialize<int>(cc, std::max(1, numML), "mlDeviceIndex");
    bool longForces = cc.getLongForceBuffer().isInitialized();
    std::map<std::string, std::string> defines;
    defines["MLREAL"] = modelIsDouble() ? "double" : "float";
    defines["MRL_GROUP_SIZE"] = std::to_string(GroupSize);
    if (longForces)
        defines["USE_LONG_FORCES"] = "1";
    if (cc.getUseMixedPrecision())
        defines["MRL_MIXED_PRECISION"] = "1";
    program = cc.compileProgram(CommonMRLKernelSources::mrlForce + CommonMRLKernelSources::mrlNeighborList, defines);
    gatherKernel = program->createKernel("gatherMLPositions");
    gatherKernel->addArg(cc.getPosq());
    if (cc.getUseMixedPrecision())
        gatherKernel->addArg(cc.getPosqCorrection());
    gatherKernel->addArg(mlDeviceIndex);
    gatherKernel->addArg(numML);
    addSharedArg(gatherKernel, positions);
    addForcesKernel = program->createKernel("addMLForces");
    addSharedArg(addForcesKernel, forces);
    addForcesKernel->addArg(mlDeviceIndex);
    addForcesKernel->addArg(numML);
    if (longForces) {
        addForcesKernel->addArg(cc.getLongForceBuffer());
        addForcesKernel->addArg(cc.getPaddedNumAtoms());
    } else {
        addForcesKernel->addArg(cc.getFloatForceBuffer());
    }
    status.initialize<int>(cc, 1, "mlStatus");
    status.upload(std::vector<int>{0});
    statusEvent = cc.createEvent();
    addForcesKernel->addArg(status);
    addEnergyKernel = program->createKernel("addMLEnergy");
    addSharedArg(addEnergyKernel, energy);
    addEnergyKernel->addArg(cc.getEnergyBuffer());
    addEnergyKernel->addArg(status);
    if (evaluator->usesNeighborList()) {
        int realSize = modelIsDouble() ? sizeof(double) : sizeof(float);
        refPositions.initialize(cc, std::max(1, 3 * numML), realSize, "mlReferencePositions");
        neighborSlots.initialize<int>(cc, std::max(1, numML), "mlNeighborSlots");
        listInfo.initialize<int>(cc, 4, "mlListInfo");
        boxVectors.initialize(cc, 9, realSize, "mlBoxVectors");
        scanKernel = program->createKernel("scanNeighbors");
        scanKernel->addArg(listInfo);
        scanKernel->addArg(neighborSlots);
        scanKernel->addArg(numML);
        listEvent = cc.createEvent();
        setListCapacity(capacityFor(32LL * numML));
    }
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        cc.addEnergyParameterDerivative(force.getEnergyParameterDerivativeName(i));
    cc.addForce(new MRLForceInfo(slotOfParticle, region));
    cc.addPostComputation(new StatusCheck(*this, force.getForceGroup()));
    cc.addReorderListener(new AtomOrderListener(atomOrderChanged));
}

// (Re)allocate the edge arrays for `newCapacity` edges and bind the kernels that use them.
void CommonCalcMRLForceKernel::setListCapacity(int newCapacity) {
    capacity = newCapacity;
    {
        TorchScope scope(*this);
        allocateShared(edgeIndex, {2, capacity}, torch::kInt64, "mlEdgeIndex");
        allocateShared(edgeShift, {capacity, 3}, evaluator->getDtype(), "mlEdgeShift");
        sharedArraysChanged();
    }
    bool isDouble = modelIsDouble();
    checkKernel = program->createKernel("checkNeighborList");
    addSharedArg(checkKernel, positions);
    checkKernel->addArg(refPositions);
    checkKernel->addArg(numML);
    addReal(checkKernel, isDouble, 0.0); // 3: the squared half skin, nm^2
    checkKernel->addArg(1);              // 4: force a rebuild
    checkKernel->addArg(listInfo);
    // The two search kernels begin with the same arguments; argument 4 is the squared reach, nm^2.
    auto searchKernel = [&](const std::string& name) {
        ComputeKernel kernel = program->createKernel(name);
        addSharedArg(kernel, positions);
        kernel->addArg(numML);
        kernel->addArg(evaluator->usesPeriodicBoundaryConditions() ? 1 : 0);
        kernel->addArg(boxVectors);
        addReal(kernel, isDouble, 0.0);
        kernel->addArg(listInfo);
        kernel->addArg(neighborSlots);
        return kernel;
    };
    countKernel = searchKernel("countNeighbors");
    writeKernel = searchKernel("writeNeighbors");
    writeKernel->addArg(capacity);
    addSharedArg(writeKernel, edgeIndex);
    addSharedArg(writeKernel, edgeShift);
    writeKernel->addArg(refPositions);
    addReal(writeKernel, isDouble, 2.0 * (evaluator->getCutoff() + evaluator->getSkin())); // padding: beyond the cutoff
    forceRebuild = true;
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

// A new periodic box: the neighbor list's reach (smaller skin in small boxes), its box array, a rebuild,
// and the box tensor of "positions" models.
void CommonCalcMRLForceKernel::updateBox(ContextImpl& context) {
    if (!evaluator->usesPeriodicBoundaryConditions())
        return;
    Vec3 box[3];
    context.getPeriodicBoxVectors(box[0], box[1], box[2]);
    if (box[0] == lastBox[0] && box[1] == lastBox[1] && box[2] == lastBox[2] && !boxBuffer.empty())
        return;
    for (int v = 0; v < 3; v++)
        lastBox[v] = box[v];
    boxBuffer.assign(9, 0.0);
    for (int v = 0; v < 3; v++)
        for (int d = 0; d < 3; d++)
            boxBuffer[3 * v + d] = box[v][d];
    if (evaluator->usesNeighborList()) {
        reach = evaluator->getCutoff() +
                MRLNeighborList::getEffectiveSkin(box, evaluator->getCutoff(), evaluator->getSkin());
        if (modelIsDouble())
            boxVectors.upload(boxBuffer.data());
        else
            boxVectors.upload(std::vector<float>(boxBuffer.begin(), boxBuffer.end()).data());
        forceRebuild = true;
    } else {
        TorchScope scope(*this);
        torch::Tensor values = torch::tensor(boxBuffer, torch::kFloat64).reshape({3, 3});
        boxTensor.copy_(values.to(evaluator->getDtype()));
    }
}

// Queue the neighbor-list kernels and the download of their summary; listOverflowed() reads it.
void CommonCalcMRLForceKernel::enqueueNeighborList() {
    if (pendingCapacity > 0) {
        setListCapacity(pendingCapacity);
        pendingCapacity = 0;
    }
    double halfSkin = 0.5 * (reach - evaluator->getCutoff());
    setReal(checkKernel, 3, modelIsDouble(), halfSkin * halfSkin);
    checkKernel->setArg(4, forceRebuild ? 1 : 0);
    setReal(countKernel, 4, modelIsDouble(), reach * reach);
    setReal(writeKernel, 4, modelIsDouble(), reach * reach);
    checkKernel->execute(GroupSize, GroupSize);
    countKernel->execute(numML);
    scanKernel->execute(GroupSize, GroupSize);
    writeKernel->execute(numML); // its grid-stride loop also covers the padding slots
    listInfo.download(hostSummary(), false);
    listEvent->enqueue();
    forceRebuild = false;
}

bool CommonCalcMRLForceKernel::listOverflowed() {
    listEvent->wait();
    const int* info = hostSummary();
    if (info[2] != 0)
        throw OpenMMException("MRLForce: particle positions are not finite (NaN or infinity); the "
                              "simulation has become unstable. Use a smaller time step or minimize first.");
    listRebuilt = info[0] != 0;
    if (!listRebuilt)
        return false;
    int total = info[1];
    listedEdges = std::min(total, capacity);
    if (total > capacity) {
        setListCapacity(capacityFor(total));
        return true;
    }
    if (capacity > CapacityQuantum && 2LL * capacityFor(total) < capacity)
        pendingCapacity = capacityFor(total); // far too roomy: shrink at the next step, the list rebuilds then
    return false;
}

std::vector<torch::Tensor> CommonCalcMRLForceKernel::modelGeometry() const {
    if (evaluator->usesNeighborList())
        return {edgeIndex.tensor, edgeShift.tensor};
    if (evaluator->usesPeriodicBoundaryConditions())
        return {boxTensor};
    return {};
}

// The host path passes the model only the listed edges within the cutoff (an O(E) pass, as the Reference
// and CPU platforms do): the model does no work for skin and padding edges, and its input is the same as
// on those platforms.
std::vector<torch::Tensor> CommonCalcMRLForceKernel::edgesWithinCutoff() {
    const int64_t* index = edgeIndex.tensor.data_ptr<int64_t>();
    double cutoff = evaluator->getCutoff();
    if (modelIsDouble())
        return MRLPlugin::edgesWithinCutoff(positions.tensor.data_ptr<double>(), index, capacity,
                                            edgeShift.tensor.data_ptr<double>(), listedEdges, cutoff, torch::kFloat64,
                                            keptEdges);
    return MRLPlugin::edgesWithinCutoff(positions.tensor.data_ptr<float>(), index, capacity,
                                        edgeShift.tensor.data_ptr<float>(), listedEdges, cutoff, torch::kFloat32,
                                        keptEdges);
}

double CommonCalcMRLForceKernel::runModelOnHost(bool includeForces) {
    positions.array.download(positions.tensor.data_ptr());
    std::vector<torch::Tensor> geometry = modelGeometry();
    if (evaluator->usesNeighborList()) {
        if (listRebuilt) {
            edgeIndex.array.download(edgeIndex.tensor.data_ptr());
            edgeShift.array.download(edgeShift.tensor.data_ptr());
        }
        geometry = edgesWithinCutoff();
    }
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
    bool useList = evaluator->usesNeighborList();
    if (useList)
        enqueueNeighborList();
    if (!onDevice()) {
        while (useList && listOverflowed())
            enqueueNeighborList();
        return runModelOnHost(includeForces);
    }
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
    if (useList && listOverflowed()) {
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
