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

// `mixed` is double in double and mixed precision, float in single: the gathered positions keep the
// precision the context has (mixed: float position plus its float correction).
const char* kernelSource = R"(
KERNEL void gatherMLPositions(GLOBAL const real4* RESTRICT posq,
#ifdef MRL_MIXED_PRECISION
                              GLOBAL const real4* RESTRICT posqCorrection,
#endif
                              GLOBAL const int* RESTRICT deviceIndex, int numML, GLOBAL mixed* RESTRICT out) {
    for (int i = GLOBAL_ID; i < numML; i += GLOBAL_SIZE) {
        int atom = deviceIndex[i];
        real4 p = posq[atom];
#ifdef MRL_MIXED_PRECISION
        real4 c = posqCorrection[atom];
        out[3*i] = (mixed) p.x + (mixed) c.x;
        out[3*i+1] = (mixed) p.y + (mixed) c.y;
        out[3*i+2] = (mixed) p.z + (mixed) c.z;
#else
        out[3*i] = p.x;
        out[3*i+1] = p.y;
        out[3*i+2] = p.z;
#endif
    }
}

KERNEL void addMLForces(GLOBAL const mixed* RESTRICT mlForces, GLOBAL const int* RESTRICT deviceIndex, int numML,
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

/** Marks the ML atoms' device indices stale when the context reorders its atoms. */
class CommonCalcMRLForceKernel::AtomOrderListener : public ComputeContext::ReorderListener {
public:
    explicit AtomOrderListener(bool& changed) : changed(changed) {}
    void execute() override { changed = true; }

private:
    bool& changed;
};

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
    bool mixedIsDouble = cc.getUseDoublePrecision() || cc.getUseMixedPrecision();
    int elementSize = mixedIsDouble ? sizeof(double) : sizeof(float);
    if (!mixedIsDouble)
        singleBuffer.resize(3 * numML);
    mlPositions.initialize(cc, std::max(1, 3 * numML), elementSize, "mlPositions");
    mlForces.initialize(cc, std::max(1, 3 * numML), elementSize, "mlForces");
    mlDeviceIndex.initialize<int>(cc, std::max(1, numML), "mlDeviceIndex");
    bool longForces = cc.getLongForceBuffer().isInitialized();
    std::map<std::string, std::string> defines;
    if (longForces)
        defines["USE_LONG_FORCES"] = "1";
    if (cc.getUseMixedPrecision())
        defines["MRL_MIXED_PRECISION"] = "1";
    ComputeProgram program = cc.compileProgram(kernelSource, defines);
    gatherKernel = program->createKernel("gatherMLPositions");
    gatherKernel->addArg(cc.getPosq());
    if (cc.getUseMixedPrecision())
        gatherKernel->addArg(cc.getPosqCorrection());
    gatherKernel->addArg(mlDeviceIndex);
    gatherKernel->addArg(numML);
    gatherKernel->addArg(mlPositions);
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
    cc.addReorderListener(new AtomOrderListener(atomOrderChanged));
}

// Where each ML atom sits in the context's arrays: found again only after the context reorders atoms.
void CommonCalcMRLForceKernel::updateAtomOrder() {
    const std::vector<int>& order = cc.getAtomIndex();
    std::vector<int> deviceIndex(particles.size(), 0);
    for (int j = 0; j < cc.getNumAtoms(); j++) {
        int slot = slotOfParticle[order[j]];
        if (slot >= 0)
            deviceIndex[slot] = j;
    }
    mlDeviceIndex.upload(deviceIndex);
    atomOrderChanged = false;
}

double CommonCalcMRLForceKernel::execute(ContextImpl& context, bool includeForces, bool /*includeEnergy*/) {
    ContextSelector selector(cc);
    int numML = static_cast<int>(particles.size());
    if (numML == 0)
        return 0.0;
    if (atomOrderChanged)
        updateAtomOrder();
    gatherKernel->execute(numML);
    if (singleBuffer.empty()) {
        mlPositions.download(positionBuffer.data());
    } else {
        mlPositions.download(singleBuffer.data());
        std::copy(singleBuffer.begin(), singleBuffer.end(), positionBuffer.begin());
    }
    Vec3 box[3];
    context.getPeriodicBoxVectors(box[0], box[1], box[2]);
    globalBuffer.clear();
    for (const std::string& name : evaluator->getGlobalParameterNames())
        globalBuffer.push_back(context.getParameter(name));
    double energy = evaluator->compute(positionBuffer.data(), box, globalBuffer, includeForces, forceBuffer,
                                       cc.getEnergyParamDerivWorkspace());
    if (includeForces) {
        if (singleBuffer.empty()) {
            mlForces.upload(forceBuffer.data());
        } else {
            std::copy(forceBuffer.begin(), forceBuffer.end(), singleBuffer.begin());
            mlForces.upload(singleBuffer.data());
        }
        addForcesKernel->execute(numML);
    }
    return energy;
}
