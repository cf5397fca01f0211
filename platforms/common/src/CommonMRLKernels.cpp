// SPDX-License-Identifier: MIT
#include "CommonMRLKernels.h"
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

const char* addForcesSource = R"(
KERNEL void addMLForces(GLOBAL const real* RESTRICT mlForces, GLOBAL const int* RESTRICT deviceIndex, int numML,
#ifdef USE_LONG_FORCES
                        GLOBAL mm_long* RESTRICT forceBuffer, int paddedNumAtoms) {
#else
                        GLOBAL real4* RESTRICT forceBuffer) {
#endif
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        int atom = deviceIndex[i];
#ifdef USE_LONG_FORCES
        forceBuffer[atom] += (mm_long) (mlForces[3*i]*0x100000000);
        forceBuffer[atom+paddedNumAtoms] += (mm_long) (mlForces[3*i+1]*0x100000000);
        forceBuffer[atom+2*paddedNumAtoms] += (mm_long) (mlForces[3*i+2]*0x100000000);
#else
        real4 f = forceBuffer[atom];
        f.x += mlForces[3*i];
        f.y += mlForces[3*i+1];
        f.z += mlForces[3*i+2];
        forceBuffer[atom] = f;
#endif
    }
}
)";

} // namespace

void CommonCalcMRLForceKernel::initialize(const System& system, const MRLForce& force, const MRLRegion& region) {
    ContextSelector selector(cc);
    // The model runs in double precision when the context does; in single for single and mixed.
    evaluator = std::make_unique<MRLEvaluator>(force, region, cc.getUseDoublePrecision() ? "double" : "single");
    particles = region.particles;
    int numML = static_cast<int>(particles.size());
    slotOfParticle.assign(system.getNumParticles(), -1);
    for (int i = 0; i < numML; i++)
        slotOfParticle[particles[i]] = i;
    positionBuffer.resize(3 * numML);
    deviceIndex.assign(numML, -1);
    int elementSize = cc.getUseDoublePrecision() ? sizeof(double) : sizeof(float);
    mlForces.initialize(cc, std::max(1, 3 * numML), elementSize, "mlForces");
    mlDeviceIndex.initialize<int>(cc, std::max(1, numML), "mlDeviceIndex");
    longForces = cc.getLongForceBuffer().isInitialized();
    std::map<std::string, std::string> defines;
    if (longForces)
        defines["USE_LONG_FORCES"] = "1";
    ComputeProgram program = cc.compileProgram(addForcesSource, defines);
    addForcesKernel = program->createKernel("addMLForces");
    addForcesKernel->addArg(mlForces);
    addForcesKernel->addArg(mlDeviceIndex);
    addForcesKernel->addArg(numML);
    if (longForces) {
        addForcesKernel->addArg(cc.getLongForceBuffer());
        addForcesKernel->addArg(cc.getPaddedNumAtoms());
    } else {
        addForcesKernel->addArg(cc.getFloatForceBuffer());
    }
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        cc.addEnergyParameterDerivative(force.getEnergyParameterDerivativeName(i));
    cc.addForce(new MRLForceInfo(slotOfParticle, region));
}

// The context's atom order changes when it reorders atoms; the ML atoms are found again each step (O(N)).
void CommonCalcMRLForceKernel::updateAtomOrder() {
    const std::vector<int>& order = cc.getAtomIndex();
    bool changed = false;
    for (int j = 0; j < cc.getNumAtoms(); j++) {
        int slot = slotOfParticle[order[j]];
        if (slot >= 0 && deviceIndex[slot] != j) {
            deviceIndex[slot] = j;
            changed = true;
        }
    }
    if (changed)
        mlDeviceIndex.upload(deviceIndex);
}

void CommonCalcMRLForceKernel::gatherPositions() {
    int numML = static_cast<int>(particles.size());
    if (cc.getUseDoublePrecision()) {
        std::vector<mm_double4> posq;
        cc.getPosq().download(posq);
        for (int i = 0; i < numML; i++) {
            const mm_double4& p = posq[deviceIndex[i]];
            positionBuffer[3 * i] = p.x;
            positionBuffer[3 * i + 1] = p.y;
            positionBuffer[3 * i + 2] = p.z;
        }
    } else {
        std::vector<mm_float4> posq, correction;
        cc.getPosq().download(posq);
        if (cc.getUseMixedPrecision())
            cc.getPosqCorrection().download(correction);
        for (int i = 0; i < numML; i++) {
            int j = deviceIndex[i];
            const mm_float4& p = posq[j];
            double c[3] = {0, 0, 0};
            if (!correction.empty())
                c[0] = correction[j].x, c[1] = correction[j].y, c[2] = correction[j].z;
            positionBuffer[3 * i] = static_cast<double>(p.x) + c[0];
            positionBuffer[3 * i + 1] = static_cast<double>(p.y) + c[1];
            positionBuffer[3 * i + 2] = static_cast<double>(p.z) + c[2];
        }
    }
}

double CommonCalcMRLForceKernel::execute(ContextImpl& context, bool includeForces, bool /*includeEnergy*/) {
    ContextSelector selector(cc);
    int numML = static_cast<int>(particles.size());
    if (numML == 0)
        return 0.0;
    updateAtomOrder();
    gatherPositions();
    Vec3 box[3];
    context.getPeriodicBoxVectors(box[0], box[1], box[2]);
    globalBuffer.clear();
    for (const std::string& name : evaluator->getGlobalParameterNames())
        globalBuffer.push_back(context.getParameter(name));
    double energy = evaluator->compute(positionBuffer.data(), box, globalBuffer, includeForces, forceBuffer,
                                       cc.getEnergyParamDerivWorkspace());
    if (includeForces) {
        mlForces.upload(forceBuffer, true);
        addForcesKernel->execute(numML);
    }
    return energy;
}
