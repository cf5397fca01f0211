// SPDX-License-Identifier: MIT
// The device code of CommonCalcMRLForceKernel, in OpenMM's common kernel language (compiled for OpenCL and CUDA
// alike): the ML atoms' positions out of the context, the model's forces and energy into it.
//
// Defines: MLREAL, the model's floating-point type; MRL_MIXED_PRECISION in mixed-precision contexts (positions
// are posq plus posqCorrection); USE_LONG_FORCES where the context accumulates forces in 64-bit fixed point.

KERNEL void gatherMLPositions(GLOBAL const real4* RESTRICT posq,
#ifdef MRL_MIXED_PRECISION
                              GLOBAL const real4* RESTRICT posqCorrection,
#endif
                              GLOBAL const int* RESTRICT deviceIndex, int numML, GLOBAL MLREAL* RESTRICT out) {
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        int atom = deviceIndex[i];
        real4 p = posq[atom];
#ifdef MRL_MIXED_PRECISION
        real4 c = posqCorrection[atom];
        out[3*i] = (MLREAL) ((mixed) p.x + (mixed) c.x);
        out[3*i+1] = (MLREAL) ((mixed) p.y + (mixed) c.y);
        out[3*i+2] = (MLREAL) ((mixed) p.z + (mixed) c.z);
#else
        out[3*i] = (MLREAL) p.x;
        out[3*i+1] = (MLREAL) p.y;
        out[3*i+2] = (MLREAL) p.z;
#endif
    }
}

// Atomic adds: OpenMM may run PME on a second queue that adds into the same buffer meanwhile.  A
// non-finite force or energy is not added; it raises the status flag that the host reads.
KERNEL void addMLForces(GLOBAL const MLREAL* RESTRICT mlForces, GLOBAL const int* RESTRICT deviceIndex, int numML,
#ifdef USE_LONG_FORCES
                        GLOBAL mm_ulong* RESTRICT forceBuffer, int paddedNumAtoms,
#else
                        GLOBAL real4* RESTRICT forceBuffer,
#endif
                        GLOBAL int* RESTRICT status) {
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        int atom = deviceIndex[i];
        MLREAL fx = mlForces[3*i], fy = mlForces[3*i+1], fz = mlForces[3*i+2];
        if (!(isfinite(fx) && isfinite(fy) && isfinite(fz))) {
            status[0] = 1;
            continue;
        }
#ifdef USE_LONG_FORCES
        ATOMIC_ADD(&forceBuffer[atom], (mm_ulong) ((mm_long) (fx*0x100000000)));
        ATOMIC_ADD(&forceBuffer[atom+paddedNumAtoms], (mm_ulong) ((mm_long) (fy*0x100000000)));
        ATOMIC_ADD(&forceBuffer[atom+2*paddedNumAtoms], (mm_ulong) ((mm_long) (fz*0x100000000)));
#else
        real4 f = forceBuffer[atom];
        f.x += fx;
        f.y += fy;
        f.z += fz;
        forceBuffer[atom] = f;
#endif
    }
}

// The model's energy into OpenMM's energy buffer (the kernels of one queue run in order: no race).
KERNEL void addMLEnergy(GLOBAL const MLREAL* RESTRICT energy, GLOBAL mixed* RESTRICT energyBuffer,
                        GLOBAL int* RESTRICT status) {
    if (GLOBAL_ID == 0) {
        if (isfinite(energy[0]))
            energyBuffer[0] += (mixed) energy[0];
        else
            status[0] = 1;
    }
}
