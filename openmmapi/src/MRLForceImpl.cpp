// SPDX-License-Identifier: MIT
#include "internal/MRLForceImpl.h"
#include "MRLKernels.h"
#include "internal/MRLModel.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include <algorithm>

using namespace MRLPlugin;
using namespace OpenMM;

MRLRegion MRLForceImpl::resolveRegion(const MRLForce& force, const System& system,
                                      const std::vector<std::vector<int>>& molecules) {
    MRLRegion region;
    int numParticles = system.getNumParticles();
    region.particles = force.getParticles();
    if (region.particles.empty())
        for (int i = 0; i < numParticles; i++)
            region.particles.push_back(i);
    for (int p : region.particles)
        if (p >= numParticles)
            throw OpenMMException("MRLForce: particle index " + std::to_string(p) +
                                  " is out of range; the System has " + std::to_string(numParticles) + " particles.");
    int numML = static_cast<int>(region.particles.size());
    std::string regionSize = "the ML region has " + std::to_string(numML) + " atoms";
    region.atomicNumbers = force.getAtomicNumbers();
    if (region.atomicNumbers.empty()) {
        if (force.getModelInterface() == ModelInterface::Graph1)
            throw OpenMMException(
                "MRLForce: a \"" + force.getInterface() +
                "\" model needs atomic numbers: call setAtomicNumbers() with one entry per ML atom (" + regionSize +
                ").");
        region.atomicNumbers.assign(numML, 0);
    }
    if (static_cast<int>(region.atomicNumbers.size()) != numML)
        throw OpenMMException("MRLForce: " + std::to_string(region.atomicNumbers.size()) +
                              " atomic numbers were given but " + regionSize +
                              "; give one per ML atom, in the order of setParticles().");
    region.moleculeIndices = force.getMoleculeIndices();
    if (region.moleculeIndices.empty()) {
        std::vector<int> moleculeOfParticle(numParticles, -1);
        for (int m = 0; m < static_cast<int>(molecules.size()); m++)
            for (int p : molecules[m])
                moleculeOfParticle[p] = m;
        std::map<int, int> renumbered;
        for (int p : region.particles) {
            int m = moleculeOfParticle[p];
            if (renumbered.find(m) == renumbered.end()) {
                int next = static_cast<int>(renumbered.size());
                renumbered[m] = next;
            }
            region.moleculeIndices.push_back(renumbered[m]);
        }
    }
    if (static_cast<int>(region.moleculeIndices.size()) != numML)
        throw OpenMMException("MRLForce: " + std::to_string(region.moleculeIndices.size()) +
                              " molecule indices were given but " + regionSize +
                              "; give one per ML atom, in the order of setParticles().");
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++) {
        const std::string& name = force.getEnergyParameterDerivativeName(i);
        bool found = false;
        for (int j = 0; j < force.getNumGlobalParameters(); j++)
            found = found || force.getGlobalParameterName(j) == name;
        if (!found)
            throw OpenMMException("MRLForce: an energy derivative is requested for '" + name +
                                  "', which is not a global parameter of the force. Call addGlobalParameter('" + name +
                                  "', value) first.");
    }
    return region;
}

void MRLForceImpl::initialize(ContextImpl& context) {
    const System& system = context.getSystem();
    MRLRegion region = resolveRegion(owner, system, context.getMolecules());
    int numArgs = owner.numForwardArguments;
    int expected = getExpectedNumForwardArguments(owner.getModelInterface(), owner.usesPeriodicBoundaryConditions(),
                                                  owner.getNumGlobalParameters());
    if (numArgs != expected)
        throw OpenMMException("MRLForce: the model's forward takes " + std::to_string(numArgs) +
                              " arguments, but a \"" + owner.getInterface() + "\" model " +
                              (owner.usesPeriodicBoundaryConditions() ? "with periodic boundary conditions " : "") +
                              "and " + std::to_string(owner.getNumGlobalParameters()) +
                              " global parameters is called as " +
                              describeExpectedForward(owner.getModelInterface(), owner.usesPeriodicBoundaryConditions(),
                                                      owner.getNumGlobalParameters()) +
                              ". Change the model, setUsesPeriodicBoundaryConditions() or the global parameters.");
    kernel = context.getPlatform().createKernel(CalcMRLForceKernel::Name(), context);
    kernel.getAs<CalcMRLForceKernel>().initialize(system, owner, region);
}

double MRLForceImpl::calcForcesAndEnergy(ContextImpl& context, bool includeForces, bool includeEnergy, int groups) {
    if ((groups & (1 << owner.getForceGroup())) == 0)
        return 0.0;
    return kernel.getAs<CalcMRLForceKernel>().execute(context, includeForces, includeEnergy);
}

std::map<std::string, double> MRLForceImpl::getDefaultParameters() {
    std::map<std::string, double> parameters;
    for (int i = 0; i < owner.getNumGlobalParameters(); i++)
        parameters[owner.getGlobalParameterName(i)] = owner.getGlobalParameterDefaultValue(i);
    return parameters;
}

std::vector<std::string> MRLForceImpl::getKernelNames() {
    return {CalcMRLForceKernel::Name()};
}
