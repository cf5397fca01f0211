// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLEVALUATOR_H_
#define OPENMM_MRLEVALUATOR_H_

#include "MRLForce.h"
#include "internal/MRLForceImpl.h"
#include "internal/MRLNeighborList.h"
#include "internal/windowsExportMRL.h"
#include "openmm/Vec3.h"
#include <map>
#include <memory>
#include <string>
#include <torch/script.h>
#include <vector>

namespace MRLPlugin {

/**
 * Runs an MRLForce's model on the host, whatever the platform: the ML atoms' positions go into
 * persistent tensors, "graph/1" models get the engine's neighbor list (filtered to the cutoff each
 * step), and the energy, the forces on the ML atoms and the requested energy-parameter derivatives come
 * back.  The Reference/CPU kernel and the common (OpenCL) kernel differ only in how they gather
 * positions and scatter forces.
 */
class OPENMM_EXPORT_MRL MRLEvaluator {
public:
    /**
     * @param force             the force whose model is run
     * @param region            its resolved ML region
     * @param defaultPrecision  "double" or "single": the model's precision unless the Precision property says otherwise
     */
    MRLEvaluator(const MRLForce& force, const MRLRegion& region, const std::string& defaultPrecision);
    /**
     * Evaluate the model.
     *
     * @param positions      3 coordinates per ML atom, in region order, measured in nm
     * @param box            the periodic box vectors (used when the force is periodic), or nullptr
     * @param globals        the current value of each global parameter, in the order they were added
     * @param includeForces  compute forces and parameter derivatives
     * @param forces         on return (when includeForces), 3 force components per ML atom, kJ/mol/nm
     * @param derivatives    dE/d(parameter) is added to the entry of each requested parameter
     * @return the energy, kJ/mol
     */
    double compute(const double* positions, const OpenMM::Vec3* box, const std::vector<double>& globals,
                   bool includeForces, std::vector<double>& forces, std::map<std::string, double>& derivatives);
    const std::vector<std::string>& getGlobalParameterNames() const { return globalNames; }
    int getNumAtoms() const { return static_cast<int>(particles.size()); }
    bool usesPeriodicBoundaryConditions() const { return periodic; }

private:
    void updateGraph(const double* positions, const OpenMM::Vec3* box);
    void copyForces(const torch::Tensor& values, double sign, std::vector<double>& forces) const;
    torch::jit::Module module;
    torch::ScalarType dtype = torch::kFloat64;
    std::string interface;
    bool periodic = false, outputsForces = false;
    int numThreads = 0;
    std::vector<int> particles;
    torch::Tensor positionTensor, boxTensor, atomicNumbers, moleculeIndices, edgeIndex, edgeShift;
    std::vector<std::string> globalNames;
    std::vector<torch::Tensor> globalValues;
    std::vector<int> derivativeOfGlobal; // global parameter index of each requested derivative
    std::unique_ptr<MRLNeighborList> neighborList;
    double cutoff = 0.0;
    std::vector<int64_t> keptSources, keptTargets; // edges within the cutoff this step
    std::vector<double> keptShifts;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLEVALUATOR_H_
