// SPDX-License-Identifier: MIT
#include "ReferenceMRLKernels.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferencePlatform.h"

using namespace MRLPlugin;
using namespace OpenMM;

static ReferencePlatform::PlatformData& getPlatformData(ContextImpl& context) {
    return *reinterpret_cast<ReferencePlatform::PlatformData*>(context.getPlatformData());
}

void ReferenceCalcMRLForceKernel::initialize(const System& /*system*/, const MRLForce& force, const MRLRegion& region) {
    Precision platformPrecision = getPlatform().getName() == "Reference" ? Precision::Double : Precision::Single;
    evaluator = std::make_unique<MRLEvaluator>(force, region, platformPrecision);
    particles = region.particles;
    positionBuffer.resize(3 * particles.size());
}

// The model returns the energy whether or not it is asked for, so includeEnergy changes nothing here.
double ReferenceCalcMRLForceKernel::execute(ContextImpl& context, bool includeForces, bool /*includeEnergy*/) {
    ReferencePlatform::PlatformData& data = getPlatformData(context);
    const std::vector<Vec3>& positions = *data.positions;
    for (size_t i = 0; i < particles.size(); i++)
        for (int d = 0; d < 3; d++)
            positionBuffer[3 * i + d] = positions[particles[i]][d];
    globalBuffer.clear();
    for (const std::string& name : evaluator->getGlobalParameterNames())
        globalBuffer.push_back(context.getParameter(name));
    double energy = evaluator->compute(positionBuffer.data(), data.periodicBoxVectors, globalBuffer, includeForces,
                                       forceBuffer, *data.energyParameterDerivatives);
    if (includeForces) {
        std::vector<Vec3>& forces = *data.forces;
        for (size_t i = 0; i < particles.size(); i++)
            forces[particles[i]] += Vec3(forceBuffer[3 * i], forceBuffer[3 * i + 1], forceBuffer[3 * i + 2]);
    }
    return energy;
}
