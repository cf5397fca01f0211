// SPDX-License-Identifier: MIT
#include "CommonMRLNeighborList.h"
#include "CommonMRLKernelSources.h"
#include "internal/MRLEvaluator.h"
#include "internal/MRLNeighborList.h"
#include "openmm/OpenMMException.h"
#include <algorithm>
#include <map>
#include <string>

using namespace MRLPlugin;
using namespace OpenMM;

namespace {

const int GroupSize = 64;        // the work-group size of the one-group kernels (check, scan)
const int CapacityQuantum = 256; // edge capacities are multiples of this

// The entries of the summary (listInfo), as kernels/mrlNeighborList.cc writes them.
const int InfoRebuilt = 0, InfoTotal = 1, InfoNonFinite = 2;

// A capacity with room for a quarter more edges than `edges`.
int capacityFor(long long edges) {
    long long wanted = edges + edges / 4 + 64;
    return static_cast<int>((wanted + CapacityQuantum - 1) / CapacityQuantum * CapacityQuantum);
}

// The scalar kernel arguments in the model's precision.
void addReal(ComputeKernel& kernel, bool isDouble, double value) {
    if (isDouble)
        kernel->addArg(value);
    else
        kernel->addArg(static_cast<float>(value));
}

void setReal(ComputeKernel& kernel, int index, bool isDouble, double value) {
    if (isDouble)
        kernel->setArg(index, value);
    else
        kernel->setArg(index, static_cast<float>(value));
}

} // namespace

CommonMRLNeighborList::CommonMRLNeighborList(ComputeContext& cc, CommonMRLSharedArray& positions, int numAtoms,
                                             bool periodic, double cutoff, double skin, bool isDouble, int* summary,
                                             EdgeAllocator allocate)
    : cc(cc), positions(positions), allocate(std::move(allocate)), numAtoms(numAtoms), periodic(periodic),
      isDouble(isDouble), cutoff(cutoff), skin(skin), reach(cutoff + skin), summary(summary) {
    std::map<std::string, std::string> defines;
    defines["MLREAL"] = isDouble ? "double" : "float";
    defines["MRL_GROUP_SIZE"] = std::to_string(GroupSize);
    program = cc.compileProgram(CommonMRLKernelSources::mrlNeighborList, defines);
    int realSize = isDouble ? sizeof(double) : sizeof(float);
    refPositions.initialize(cc, std::max(1, 3 * numAtoms), realSize, "mlReferencePositions");
    neighborSlots.initialize<int>(cc, std::max(1, numAtoms), "mlNeighborSlots");
    listInfo.initialize<int>(cc, 4, "mlListInfo");
    boxVectors.initialize(cc, 9, realSize, "mlBoxVectors");
    listEvent = cc.createEvent();
    checkKernel = program->createKernel("checkNeighborList");
    positions.addArgTo(checkKernel);
    checkKernel->addArg(refPositions);
    checkKernel->addArg(numAtoms);
    addReal(checkKernel, isDouble, 0.0); // 3: the squared half skin, nm^2
    checkKernel->addArg(1);              // 4: force a rebuild
    checkKernel->addArg(listInfo);
    countKernel = createSearchKernel("countNeighbors");
    scanKernel = program->createKernel("scanNeighbors");
    scanKernel->addArg(listInfo);
    scanKernel->addArg(neighborSlots);
    scanKernel->addArg(numAtoms);
    setCapacity(capacityFor(32LL * numAtoms));
}

// The two search kernels begin with the same arguments; argument 4 is the squared reach, nm^2, set per step.
ComputeKernel CommonMRLNeighborList::createSearchKernel(const std::string& name) {
    ComputeKernel kernel = program->createKernel(name);
    positions.addArgTo(kernel);
    kernel->addArg(numAtoms);
    kernel->addArg(periodic ? 1 : 0);
    kernel->addArg(boxVectors);
    addReal(kernel, isDouble, 0.0);
    kernel->addArg(listInfo);
    kernel->addArg(neighborSlots);
    return kernel;
}

// (Re)allocate the edge arrays for `newCapacity` edges and bind them to the kernel that writes them.
void CommonMRLNeighborList::setCapacity(int newCapacity) {
    capacity = newCapacity;
    allocate(edgeIndex, edgeShift, capacity);
    writeKernel = createSearchKernel("writeNeighbors");
    writeKernel->addArg(capacity);
    edgeIndex.addArgTo(writeKernel);
    edgeShift.addArgTo(writeKernel);
    writeKernel->addArg(refPositions);
    addReal(writeKernel, isDouble, 2.0 * (cutoff + skin)); // padding: beyond the cutoff
    forceRebuild = true;
}

void CommonMRLNeighborList::setBox(const Vec3* box) {
    reach = cutoff + MRLNeighborList::getEffectiveSkin(box, cutoff, skin);
    double values[9];
    for (int v = 0; v < 3; v++)
        for (int d = 0; d < 3; d++)
            values[3 * v + d] = box[v][d];
    if (isDouble) {
        boxVectors.upload(values);
    } else {
        float single[9];
        std::copy(values, values + 9, single);
        boxVectors.upload(single);
    }
    forceRebuild = true;
}

void CommonMRLNeighborList::enqueue() {
    if (pendingCapacity > 0) {
        setCapacity(pendingCapacity);
        pendingCapacity = 0;
    }
    double halfSkin = 0.5 * (reach - cutoff);
    setReal(checkKernel, 3, isDouble, halfSkin * halfSkin);
    checkKernel->setArg(4, forceRebuild ? 1 : 0);
    setReal(countKernel, 4, isDouble, reach * reach);
    setReal(writeKernel, 4, isDouble, reach * reach);
    checkKernel->execute(GroupSize, GroupSize);
    countKernel->execute(numAtoms);
    scanKernel->execute(GroupSize, GroupSize);
    writeKernel->execute(numAtoms); // its grid-stride loop also covers the padding slots
    listInfo.download(summary, false);
    listEvent->enqueue();
    forceRebuild = false;
}

bool CommonMRLNeighborList::overflowed() {
    listEvent->wait();
    if (summary[InfoNonFinite] != 0)
        throw OpenMMException("MRLForce: particle positions are not finite (NaN or infinity); the "
                              "simulation has become unstable. Use a smaller time step or minimize first.");
    rebuilt = summary[InfoRebuilt] != 0;
    if (!rebuilt)
        return false;
    int total = summary[InfoTotal];
    listedEdges = std::min(total, capacity);
    if (total > capacity) {
        setCapacity(capacityFor(total));
        return true;
    }
    if (capacity > CapacityQuantum && 2LL * capacityFor(total) < capacity)
        pendingCapacity = capacityFor(total); // far too roomy: shrink at the next step, the list rebuilds then
    return false;
}

std::vector<torch::Tensor> CommonMRLNeighborList::edgesWithinCutoffOnHost() {
    if (rebuilt) {
        edgeIndex.array.download(edgeIndex.tensor.data_ptr());
        edgeShift.array.download(edgeShift.tensor.data_ptr());
    }
    const int64_t* index = edgeIndex.tensor.data_ptr<int64_t>();
    if (isDouble)
        return edgesWithinCutoff(positions.tensor.data_ptr<double>(), index, capacity,
                                 edgeShift.tensor.data_ptr<double>(), listedEdges, cutoff, torch::kFloat64, keptEdges);
    return edgesWithinCutoff(positions.tensor.data_ptr<float>(), index, capacity, edgeShift.tensor.data_ptr<float>(),
                             listedEdges, cutoff, torch::kFloat32, keptEdges);
}

void CommonMRLNeighborList::releaseTensors() {
    edgeIndex.tensor = torch::Tensor();
    edgeShift.tensor = torch::Tensor();
}
