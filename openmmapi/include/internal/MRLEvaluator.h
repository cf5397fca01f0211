// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLEVALUATOR_H_
#define OPENMM_MRLEVALUATOR_H_

#include "MRLForce.h"
#include "internal/MRLForceImpl.h"
#include "internal/MRLNeighborList.h"
#include "internal/MRLPackage.h"
#include "internal/windowsExportMRL.h"
#include "openmm/Vec3.h"
#include <map>
#include <memory>
#include <string>
#include <torch/script.h>
#include <vector>

namespace MRLPlugin {

/**
 * The listed edges shorter than the cutoff, as the model's inputs: edge_index [2, K] (int64) and edge_shift
 * [K, 3] (dtype), on the CPU.  An O(E) pass over a neighbor list that also holds skin (and padding) edges.
 *
 * @param positions  3 coordinates per atom, nm
 * @param index      the list's [2, stride] row-major edge index: sources, then (at stride) targets
 * @param shift      the list's [*, 3] periodic shifts, nm
 * @param numListed  the number of listed edges (the first numListed columns)
 * @param kept       scratch space, reused from step to step
 */
template <typename Real>
std::vector<torch::Tensor> edgesWithinCutoff(const Real* positions, const int64_t* index, int64_t stride,
                                             const Real* shift, int numListed, double cutoff, torch::ScalarType dtype,
                                             std::vector<int64_t>& kept) {
    kept.clear();
    const double cutoff2 = cutoff * cutoff;
    for (int e = 0; e < numListed; e++) {
        const Real *ri = positions + 3 * index[e], *rj = positions + 3 * index[stride + e], *s = shift + 3 * e;
        double dx = rj[0] - ri[0] + s[0], dy = rj[1] - ri[1] + s[1], dz = rj[2] - ri[2] + s[2];
        if (dx * dx + dy * dy + dz * dz < cutoff2)
            kept.push_back(e);
    }
    int64_t numKept = static_cast<int64_t>(kept.size());
    torch::Tensor edgeIndex = torch::empty({2, numKept}, torch::kInt64);
    torch::Tensor edgeShift = torch::empty({numKept, 3}, c10::CppTypeToScalarType<Real>::value);
    int64_t* out = edgeIndex.data_ptr<int64_t>();
    Real* outShift = edgeShift.data_ptr<Real>();
    for (int64_t k = 0; k < numKept; k++) {
        out[k] = index[kept[k]];
        out[numKept + k] = index[stride + kept[k]];
        for (int d = 0; d < 3; d++)
            outShift[3 * k + d] = shift[3 * kept[k] + d];
    }
    return {edgeIndex, edgeShift.scalar_type() == dtype ? edgeShift : edgeShift.to(dtype)};
}

/** What one model call returns, as tensors on the model's device. */
struct MRLModelOutput {
    torch::Tensor energy;                   ///< one element, kJ/mol
    torch::Tensor forces;                   ///< [N, 3], kJ/mol/nm; undefined unless forces were requested
    std::vector<torch::Tensor> derivatives; ///< dE/d(parameter) per requested derivative; undefined means 0
};

/**
 * Runs an MRLForce's model, whatever the platform.  compute() is the host path (Reference, CPU, and the
 * OpenCL kernel): positions in as doubles, the engine's neighbor list for "graph/1" models (filtered to the
 * cutoff each step), and the energy, forces and requested energy-parameter derivatives out as checked host
 * numbers.  run() is the device path (CUDA): it takes tensors already on the model's device and returns
 * tensors, with no host synchronisation and no value checks, so that it can be captured in a CUDA graph.
 */
class OPENMM_EXPORT_MRL MRLEvaluator {
public:
    /**
     * @param force              the force whose model is run (its settings are read once, here)
     * @param region             its resolved ML region
     * @param platformPrecision  Single or Double: the model's precision unless the Precision property says otherwise
     * @param device             where the model and its tensors live
     */
    MRLEvaluator(const MRLForce& force, const MRLRegion& region, Precision platformPrecision,
                 const torch::Device& device = torch::Device(torch::kCPU));
    ~MRLEvaluator();
    /**
     * Evaluate the model on the host.
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
    /**
     * Run the model on tensors on its device.
     *
     * @param positions      [N, 3] in the model's dtype, nm; it must require gradients unless the model outputs forces
     * @param geometry       {edge_index [2,E], edge_shift [E,3]} for "graph/1" models, {box [3,3]} for periodic
     *                       "positions" models, empty otherwise
     * @param includeForces  compute forces and the requested parameter derivatives
     */
    MRLModelOutput run(const torch::Tensor& positions, const std::vector<torch::Tensor>& geometry, bool includeForces);
    /**
     * Set the global parameters the next run() passes the model.  Only values that changed are written, so
     * on a GPU an unchanged parameter costs nothing.
     */
    void setGlobals(const std::vector<double>& values);
    /** The energy as a host number, kJ/mol; throws if it is not finite. */
    static double checkedEnergy(const torch::Tensor& energy);
    /** Forces as host numbers (3 per ML atom, kJ/mol/nm); throws, naming the atom, if one is not finite. */
    void copyForces(const torch::Tensor& values, std::vector<double>& forces) const;
    /** CPU forces as a contiguous tensor of the given dtype (no copy if they are one already), checked as above. */
    torch::Tensor checkedForces(const torch::Tensor& values, torch::ScalarType dtype) const;
    /** The parameter derivatives of an output, added to the entries of their parameters in derivatives. */
    void addDerivatives(const MRLModelOutput& output, std::map<std::string, double>& derivatives) const;
    const std::vector<std::string>& getGlobalParameterNames() const { return globalNames; }
    int getNumAtoms() const { return static_cast<int>(particles.size()); }
    bool usesPeriodicBoundaryConditions() const { return periodic; }
    bool usesNeighborList() const { return interface == ModelInterface::Graph1; }
    bool getOutputsForces() const { return outputsForces; }
    bool hasDerivatives() const { return !derivativeOfGlobal.empty(); }
    torch::ScalarType getDtype() const { return dtype; }
    const torch::Device& getDevice() const { return device; }
    /** The model's cutoff and the requested neighbor-list skin, nm ("graph/1" models). */
    double getCutoff() const { return cutoff; }
    double getSkin() const { return settings.neighborListSkinNm; }
    /** The force's settings (its parsed properties). */
    const MRLSettings& getSettings() const { return settings; }

private:
    void updateGraph(const double* positions, const OpenMM::Vec3* box);
    [[noreturn]] void throwNonFiniteForce(int64_t component) const;
    MRLModelOutput runPackage(const std::vector<torch::Tensor>& inputs, bool includeForces);
    torch::jit::Module module;                                        // a TorchScript model, or
    std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package; // an AOTInductor package's model
    torch::Device device;
    torch::ScalarType dtype = torch::kFloat64;
    ModelInterface interface = ModelInterface::Positions;
    bool periodic = false, outputsForces = false;
    MRLSettings settings;
    std::vector<int> particles;
    torch::Tensor positionTensor, boxTensor, atomicNumbers, moleculeIndices, edgeIndex, edgeShift;
    std::vector<std::string> globalNames;
    std::vector<torch::Tensor> globalValues;
    std::vector<double> lastGlobals;
    std::vector<int> derivativeOfGlobal; // global parameter index of each requested derivative
    std::unique_ptr<MRLNeighborList> neighborList;
    double cutoff = 0.0;
    std::vector<int64_t> keptEdges; // scratch of edgesWithinCutoff
};

} // namespace MRLPlugin

#endif // OPENMM_MRLEVALUATOR_H_
