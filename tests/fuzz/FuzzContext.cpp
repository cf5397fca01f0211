// SPDX-License-Identifier: MIT
// The Context in which the MRLForce fuzz targets evaluate what they parsed.
#include "FuzzUtilities.h"
#include "MRLSanitizers.h"
#include "openmm/Context.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include <memory>
#include <vector>

extern "C" void registerMRLReferenceKernelFactories();

using namespace OpenMM;

namespace MRLFuzz {

/// Evaluates `force` (owned by the System made here) in a Reference Context when its lists fit 64 particles.
void evaluateInContext(Force* force, int particles) {
    static bool registered = false;
    if (!registered) {
        registerMRLReferenceKernelFactories();
        registered = true;
    }
    System system;
    for (int i = 0; i < particles; i++)
        system.addParticle(12.0);
    system.setDefaultPeriodicBoxVectors(Vec3(2.0, 0, 0), Vec3(0, 2.0, 0), Vec3(0, 0, 2.0));
    system.addForce(force);
    VerletIntegrator integrator(0.001);
    std::unique_ptr<Context> made;
    {
        MRLTest::IgnoreLeaksOfAFailingContext failing; // OpenMM's ContextImpl leaks when initialize() throws
        made = std::make_unique<Context>(system, integrator, Platform::getPlatformByName("Reference"));
    }
    Context& context = *made;
    std::vector<Vec3> positions;
    for (int i = 0; i < particles; i++)
        positions.emplace_back(0.13 * (i % 4), 0.17 * ((i / 4) % 4), 0.19 * (i / 16));
    context.setPositions(positions);
    context.getState(State::Energy | State::Forces);
}

} // namespace MRLFuzz
