// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_NEIGHBOR_LIST_H_
#define COMMON_MRL_NEIGHBOR_LIST_H_

#include "CommonMRLSharedArray.h"
#include "openmm/Vec3.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeEvent.h"
#include "openmm/common/ComputeKernel.h"
#include "openmm/common/ComputeProgram.h"
#include <functional>
#include <string>
#include <vector>

namespace MRLPlugin {

/**
 * The neighbor list of a "graph/1" model on a ComputeContext platform (OpenCL, CUDA), kept on the device, as
 * OpenMM's ComputeNeighborList is for its nonbonded forces.  Its device code is kernels/mrlNeighborList.cc.
 *
 * Edges are directed pairs (i, j) of ML atoms within cutoff + skin, grouped by i and sorted by j (the order
 * of the host list, MRLNeighborList).  Each step enqueue() queues a check (has an atom moved more than half
 * the skin since the last build, or is a rebuild due?), the all-pairs search that rebuilds the list only
 * when it is needed, and the download of a small summary; overflowed() waits for that summary.  The edges
 * live in arrays of a fixed capacity that the model reads as they are (the slots after the last edge hold
 * padding edges beyond the cutoff): they grow when a rebuilt list does not fit and shrink at a rebuild when
 * they are more than twice too roomy.
 */
class CommonMRLNeighborList {
public:
    /**
     * Allocates the edge arrays, which the model reads: edgeIndex [2, capacity] int64 and edgeShift
     * [capacity, 3] in the model's precision, where the model runs (the kernel guards LibTorch for it).
     */
    using EdgeAllocator =
        std::function<void(CommonMRLSharedArray& edgeIndex, CommonMRLSharedArray& edgeShift, int capacity)>;
    /**
     * Create the list; call with the context current.
     *
     * @param cc         the context
     * @param positions  the ML atoms' positions [N, 3], nm, in the model's precision: gathered before each enqueue()
     * @param numAtoms   N, the number of ML atoms
     * @param periodic   whether pairs are found in the periodic box given by setBox()
     * @param cutoff     the model's cutoff, nm
     * @param skin       the requested skin, nm
     * @param isDouble   whether the model runs in double precision (else single)
     * @param summary    host memory (pinned on CUDA) for the 4 ints of the summary that overflowed() reads
     * @param allocate   allocates the edge arrays, now and whenever the capacity changes
     */
    CommonMRLNeighborList(OpenMM::ComputeContext& cc, CommonMRLSharedArray& positions, int numAtoms, bool periodic,
                          double cutoff, double skin, bool isDouble, int* summary, EdgeAllocator allocate);
    /**
     * Use a new periodic box: the reach it allows (a smaller skin where the box is small) and a rebuild.
     *
     * @param box  the three box vectors in OpenMM's reduced form, nm
     */
    void setBox(const OpenMM::Vec3* box);
    /** Queue this step's check, the rebuild where it is needed, and the download of the summary; no host wait. */
    void enqueue();
    /**
     * Wait for the summary of the last enqueue().  Throws an OpenMMException if a position is not finite.
     *
     * @return true if the list rebuilt this step did not fit: the capacity has grown, so call enqueue() again
     */
    bool overflowed();
    /** Whether the last enqueue() rebuilt the list (known once overflowed() has returned). */
    bool wasRebuilt() const { return rebuilt; }
    /** The edges as the model reads them: {edge_index [2, C] int64, edge_shift [C, 3], nm}, C the capacity. */
    std::vector<torch::Tensor> getEdges() const { return {edgeIndex.tensor, edgeShift.tensor}; }
    /**
     * The host path: the listed edges within the cutoff, as CPU tensors for the model (an O(E) pass, as the
     * Reference and CPU platforms do).  The list is downloaded only when it was rebuilt; the positions'
     * tensor must hold this step's positions.
     */
    std::vector<torch::Tensor> edgesWithinCutoffOnHost();
    /** Drop the edge tensors (the CUDA kernel releases LibTorch memory while it holds LibTorch's context). */
    void releaseTensors();

private:
    OpenMM::ComputeKernel createSearchKernel(const std::string& name);
    void setCapacity(int capacity);
    OpenMM::ComputeContext& cc;
    CommonMRLSharedArray& positions;
    CommonMRLSharedArray edgeIndex, edgeShift; // [2, C] int64, [C, 3]
    EdgeAllocator allocate;
    int numAtoms;
    bool periodic, isDouble;
    double cutoff, skin;
    double reach; // cutoff + the skin this box allows, nm
    int* summary; // rebuilt, total edges, non-finite, unused
    bool forceRebuild = true, rebuilt = false;
    int capacity = 0, pendingCapacity = 0, listedEdges = 0;
    std::vector<int64_t> keptEdges; // scratch of edgesWithinCutoffOnHost
    OpenMM::ComputeArray refPositions, neighborSlots, listInfo, boxVectors;
    OpenMM::ComputeProgram program;
    OpenMM::ComputeKernel checkKernel, countKernel, scanKernel, writeKernel;
    OpenMM::ComputeEvent listEvent;
};

} // namespace MRLPlugin

#endif // COMMON_MRL_NEIGHBOR_LIST_H_
