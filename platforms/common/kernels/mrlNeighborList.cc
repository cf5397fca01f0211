// SPDX-License-Identifier: MIT
// The device code of CommonMRLNeighborList, in OpenMM's common kernel language (compiled for OpenCL and CUDA
// alike): the neighbor list of "graph/1" models.
//
// Directed pairs (i, j) of ML atoms with |r_j - r_i + shift| < cutoff + skin, grouped by i in order and sorted
// by j (the order of the host list), stored in arrays of a fixed capacity so that the model's input shapes stay
// the same between rebuilds (CUDA graphs).  The slots after the last edge hold padding edges (0, 0) whose shift
// is longer than the cutoff: the model gives them, like the skin edges, nothing.  A rebuild searches all pairs
// (O(N^2) work, only on the steps that rebuild), in the minimum image of OpenMM's reduced box, which is unique
// because cutoff + skin is kept below half the box's smallest width.
//
// Defines: MLREAL, the model's floating-point type; MRL_GROUP_SIZE, the work-group size of the one-group
// kernels (check, scan).  listInfo holds, in order: whether the list is rebuilt this step, the number of
// listed edges, and whether a position is not finite.

#define INFO_REBUILD 0
#define INFO_TOTAL 1
#define INFO_NONFINITE 2

// One work group: has any atom moved more than half the skin since the last build (or is a rebuild forced)?
KERNEL void checkNeighborList(GLOBAL const MLREAL* RESTRICT pos, GLOBAL const MLREAL* RESTRICT refPos, int numML,
                              MLREAL limit2, int forceRebuild, GLOBAL int* RESTRICT listInfo) {
    LOCAL int moved[MRL_GROUP_SIZE];
    int far = forceRebuild;
    for (int i = LOCAL_ID; i < numML; i += MRL_GROUP_SIZE) {
        MLREAL dx = pos[3*i]-refPos[3*i], dy = pos[3*i+1]-refPos[3*i+1], dz = pos[3*i+2]-refPos[3*i+2];
        if (!(dx*dx+dy*dy+dz*dz <= limit2)) // NaN positions count as moved: the rebuild reports them
            far = 1;
    }
    moved[LOCAL_ID] = far;
    SYNC_THREADS;
    if (LOCAL_ID == 0) {
        int any = 0;
        for (int t = 0; t < MRL_GROUP_SIZE; t++)
            any |= moved[t];
        listInfo[INFO_REBUILD] = any;
        listInfo[INFO_NONFINITE] = 0;
    }
}

// The image of r_j - r_i nearest to zero in OpenMM's reduced box, and the shift that gives it.
DEVICE void nearestImage(MLREAL* delta, MLREAL* shift, GLOBAL const MLREAL* RESTRICT box) {
    shift[0] = 0;
    shift[1] = 0;
    shift[2] = 0;
    for (int v = 2; v >= 0; v--) {
        MLREAL n = floor(delta[v]/box[4*v]+(MLREAL) 0.5);
        for (int d = 0; d < 3; d++) {
            delta[d] -= n*box[3*v+d];
            shift[d] -= n*box[3*v+d];
        }
    }
}

DEVICE int isNeighbor(GLOBAL const MLREAL* RESTRICT pos, int i, int j, int periodic, GLOBAL const MLREAL* RESTRICT box,
                      MLREAL reach2, MLREAL* shift) {
    MLREAL delta[3] = {pos[3*j]-pos[3*i], pos[3*j+1]-pos[3*i+1], pos[3*j+2]-pos[3*i+2]};
    shift[0] = 0;
    shift[1] = 0;
    shift[2] = 0;
    if (periodic)
        nearestImage(delta, shift, box);
    return delta[0]*delta[0]+delta[1]*delta[1]+delta[2]*delta[2] < reach2;
}

KERNEL void countNeighbors(GLOBAL const MLREAL* RESTRICT pos, int numML, int periodic, GLOBAL const MLREAL* RESTRICT box,
                           MLREAL reach2, GLOBAL int* RESTRICT listInfo, GLOBAL int* RESTRICT counts) {
    if (listInfo[INFO_REBUILD] == 0)
        return;
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        if (!(isfinite(pos[3*i]) && isfinite(pos[3*i+1]) && isfinite(pos[3*i+2])))
            listInfo[INFO_NONFINITE] = 1;
        int count = 0;
        MLREAL shift[3];
        for (int j = 0; j < numML; j++)
            if (j != i && isNeighbor(pos, i, j, periodic, box, reach2, shift))
                count++;
        counts[i] = count;
    }
}

// One work group: the counts become each atom's first slot, and listInfo gets the total.
KERNEL void scanNeighbors(GLOBAL int* RESTRICT listInfo, GLOBAL int* RESTRICT counts, int numML) {
    LOCAL int partial[MRL_GROUP_SIZE];
    if (listInfo[INFO_REBUILD] == 0)
        return;
    int chunk = (numML+MRL_GROUP_SIZE-1)/MRL_GROUP_SIZE;
    int start = LOCAL_ID*chunk;
    int end = min(start+chunk, numML);
    int sum = 0;
    for (int i = start; i < end; i++)
        sum += counts[i];
    partial[LOCAL_ID] = sum;
    SYNC_THREADS;
    if (LOCAL_ID == 0) {
        int running = 0;
        for (int t = 0; t < MRL_GROUP_SIZE; t++) {
            int value = partial[t];
            partial[t] = running;
            running += value;
        }
        listInfo[INFO_TOTAL] = running;
    }
    SYNC_THREADS;
    int running = partial[LOCAL_ID];
    for (int i = start; i < end; i++) {
        int value = counts[i];
        counts[i] = running;
        running += value;
    }
}

KERNEL void writeNeighbors(GLOBAL const MLREAL* RESTRICT pos, int numML, int periodic, GLOBAL const MLREAL* RESTRICT box,
                           MLREAL reach2, GLOBAL const int* RESTRICT listInfo, GLOBAL const int* RESTRICT firstSlot,
                           int capacity, GLOBAL mm_long* RESTRICT edgeIndex, GLOBAL MLREAL* RESTRICT edgeShift,
                           GLOBAL MLREAL* RESTRICT refPos, MLREAL paddingLength) {
    if (listInfo[INFO_REBUILD] == 0)
        return;
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        int slot = firstSlot[i];
        MLREAL shift[3];
        for (int j = 0; j < numML; j++)
            if (j != i && isNeighbor(pos, i, j, periodic, box, reach2, shift)) {
                if (slot < capacity) {
                    edgeIndex[slot] = i;
                    edgeIndex[capacity+slot] = j;
                    edgeShift[3*slot] = shift[0];
                    edgeShift[3*slot+1] = shift[1];
                    edgeShift[3*slot+2] = shift[2];
                }
                slot++;
            }
        refPos[3*i] = pos[3*i];
        refPos[3*i+1] = pos[3*i+1];
        refPos[3*i+2] = pos[3*i+2];
    }
    for (int e = listInfo[INFO_TOTAL]+GLOBAL_ID; e < capacity; e += GLOBAL_SIZE) {
        edgeIndex[e] = 0;
        edgeIndex[capacity+e] = 0;
        edgeShift[3*e] = paddingLength;
        edgeShift[3*e+1] = 0;
        edgeShift[3*e+2] = 0;
    }
}
