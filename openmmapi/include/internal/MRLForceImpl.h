// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLFORCEIMPL_H_
#define OPENMM_MRLFORCEIMPL_H_

#include "MRLForce.h"
#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"
#include <map>
#include <string>
#include <vector>

namespace MRLPlugin {

/**
 * The ML region of an MRLForce in a particular System, with every default resolved: the particle
 * indices, and the atomic number and molecule index of each ML atom (molecules numbered 0, 1, ...).
 */
struct MRLRegion {
    std::vector<int> particles, atomicNumbers, moleculeIndices;
};

/**
 * The internal implementation of MRLForce: it validates the force against the System and hands the
 * work to a CalcMRLForceKernel.
 */
class OPENMM_EXPORT_MRL MRLForceImpl : public OpenMM::ForceImpl {
public:
    explicit MRLForceImpl(const MRLForce& owner) : owner(owner) {}
    void initialize(OpenMM::ContextImpl& context) override;
    const MRLForce& getOwner() const override { return owner; }
    void updateContextState(OpenMM::ContextImpl&, bool&) override {}
    double calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy,
                               int groups) override;
    std::map<std::string, double> getDefaultParameters() override;
    std::vector<std::string> getKernelNames() override;
    /**
     * Resolve the ML region of a force in a System (defaults filled in) and check it, throwing an
     * OpenMMException that names the problem.
     *
     * @param molecules  the System's molecules (ContextImpl::getMolecules()), used when the force has no
     *                   molecule indices
     */
    static MRLRegion resolveRegion(const MRLForce& force, const OpenMM::System& system,
                                   const std::vector<std::vector<int>>& molecules);

private:
    const MRLForce& owner;
    OpenMM::Kernel kernel;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLFORCEIMPL_H_
