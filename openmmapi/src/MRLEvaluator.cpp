// SPDX-License-Identifier: MIT
#include "internal/MRLEvaluator.h"
#include "internal/MRLArchive.h"
#include "internal/MRLModel.h"
#include "openmm/OpenMMException.h"
#include <ATen/Parallel.h>
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

using namespace MRLPlugin;
using namespace OpenMM;

/**
 * Keep freed large blocks in the heap.  glibc serves allocations above its mmap threshold (at most 32 MiB
 * by default) with fresh mappings and unmaps them on free, so each step of a big model faults its
 * temporaries in again; raising the thresholds lets the next step reuse the memory.
 */
static void reuseLargeAllocations() {
#if defined(__GLIBC__)
    static bool done = false;
    if (!done) {
        const int oneGiB = 1 << 30;
        mallopt(M_MMAP_THRESHOLD, oneGiB);
        mallopt(M_TRIM_THRESHOLD, oneGiB);
        done = true;
    }
#endif
}

template <typename Real> static void fillTensor(torch::Tensor& tensor, const double* values) {
    Real* data = tensor.data_ptr<Real>();
    for (int64_t i = 0; i < tensor.numel(); i++)
        data[i] = static_cast<Real>(values[i]);
}

static void fill(torch::Tensor& tensor, const double* values) {
    torch::NoGradGuard noGrad;
    if (tensor.scalar_type() == torch::kFloat64)
        fillTensor<double>(tensor, values);
    else
        fillTensor<float>(tensor, values);
}

MRLEvaluator::MRLEvaluator(const MRLForce& force, const MRLRegion& region, Precision platformPrecision,
                           const torch::Device& device)
    : device(device), settings(force.getSettings()) {
    dtype = settings.resolvePrecision(platformPrecision) == Precision::Double ? torch::kFloat64 : torch::kFloat32;
    if (device.is_cpu() && settings.reuseMemory)
        reuseLargeAllocations();
    const std::string& bytes = force.getModelBytes();
    if (force.getModelFormat() == ModelFormat::AOTInductor) {
        MRLPackage contents(bytes, checkModelArchive(bytes, "the model package"), "the model package");
        package = contents.load(dtype == torch::kFloat64 ? "float64" : "float32", device);
    } else {
        module = loadModel(bytes, "the model");
        convertFloatingPoint(module, dtype);
        module.to(device);
        module.eval();
    }
    interface = force.getModelInterface();
    periodic = force.usesPeriodicBoundaryConditions();
    outputsForces = force.getOutputsForces() || package != nullptr;
    particles = region.particles;
    int numML = static_cast<int>(particles.size());
    torch::TensorOptions options = torch::TensorOptions().dtype(dtype);
    positionTensor = torch::zeros({numML, 3}, options).requires_grad_(!outputsForces);
    boxTensor = torch::zeros({3, 3}, options);
    std::vector<int64_t> z(region.atomicNumbers.begin(), region.atomicNumbers.end());
    std::vector<int64_t> m(region.moleculeIndices.begin(), region.moleculeIndices.end());
    atomicNumbers = torch::tensor(z, torch::kInt64).to(device);
    moleculeIndices = torch::tensor(m, torch::kInt64).to(device);
    cutoff = force.getCutoff();
    if (usesNeighborList())
        neighborList = std::make_unique<MRLNeighborList>(cutoff, getSkin());
    for (int i = 0; i < force.getNumGlobalParameters(); i++) {
        globalNames.push_back(force.getGlobalParameterName(i));
        globalValues.push_back(torch::zeros({}, options.device(device)));
    }
    lastGlobals.assign(globalNames.size(), 0.0);
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        for (int j = 0; j < force.getNumGlobalParameters(); j++)
            if (globalNames[j] == force.getEnergyParameterDerivativeName(i)) {
                derivativeOfGlobal.push_back(j);
                globalValues[j].requires_grad_(true);
            }
}

MRLEvaluator::~MRLEvaluator() = default;

/**
 * Bring the neighbor list up to date and pass the model the listed edges that are within the cutoff
 * now.  The list itself (cutoff + skin) is rebuilt rarely; the filter costs O(E) per step, spares the
 * model the skin edges, and makes the edges a function of the current positions alone, whatever the
 * list's history (checkpoints restore bit for bit).
 */
void MRLEvaluator::updateGraph(const double* r, const Vec3* boxVectors) {
    neighborList->update(r, getNumAtoms(), boxVectors);
    int numListed = neighborList->getNumEdges();
    std::vector<torch::Tensor> edges =
        edgesWithinCutoff(r, neighborList->getEdgeIndex().data(), numListed, neighborList->getEdgeShift().data(),
                          numListed, cutoff, dtype, keptEdges);
    edgeIndex = edges[0];
    edgeShift = edges[1];
}

void MRLEvaluator::throwNonFiniteForce(int64_t component) const {
    throw OpenMMException("MRLForce: the model returned a non-finite force on ML atom " +
                          std::to_string(component / 3) + " (particle " + std::to_string(particles[component / 3]) +
                          "). Check the positions (overlapping atoms?) and the model.");
}

// The first component that is not finite, or -1.
template <typename Real> static int64_t firstNonFinite(const torch::Tensor& values) {
    const Real* data = values.data_ptr<Real>();
    for (int64_t i = 0; i < values.numel(); i++)
        if (!std::isfinite(data[i]))
            return i;
    return -1;
}

template <typename Real> static void copyAsDouble(const torch::Tensor& values, std::vector<double>& forces) {
    const Real* data = values.data_ptr<Real>();
    std::copy(data, data + values.numel(), forces.begin());
}

// Reads the forces in their own precision: no conversion copy of the tensor.
void MRLEvaluator::copyForces(const torch::Tensor& forceTensor, std::vector<double>& forces) const {
    torch::Tensor values = forceTensor.scalar_type() == torch::kFloat32 ? forceTensor.contiguous()
                                                                        : forceTensor.to(torch::kFloat64).contiguous();
    bool isFloat = values.scalar_type() == torch::kFloat32;
    int64_t bad = isFloat ? firstNonFinite<float>(values) : firstNonFinite<double>(values);
    if (bad >= 0)
        throwNonFiniteForce(bad);
    forces.resize(3 * particles.size());
    if (isFloat)
        copyAsDouble<float>(values, forces);
    else
        copyAsDouble<double>(values, forces);
}

torch::Tensor MRLEvaluator::checkedForces(const torch::Tensor& forceTensor, torch::ScalarType type) const {
    torch::Tensor values = forceTensor.to(type).contiguous();
    int64_t bad = type == torch::kFloat32 ? firstNonFinite<float>(values) : firstNonFinite<double>(values);
    if (bad >= 0)
        throwNonFiniteForce(bad);
    return values;
}

static void checkTensor(const torch::Tensor& tensor, const std::string& what, std::vector<int64_t> shape) {
    if (!tensor.is_floating_point())
        throw OpenMMException("MRLForce: the model's " + what + " has dtype " +
                              std::string(c10::toString(tensor.scalar_type())) +
                              "; it must be a floating-point tensor.");
    bool scalar = shape.empty();
    bool matches = scalar ? tensor.numel() == 1 : tensor.sizes().vec() == shape;
    if (!matches) {
        std::string expected = scalar ? std::string("a single number") : c10::str("[", shape[0], ", 3]");
        throw OpenMMException("MRLForce: the model's " + what + " has shape " + c10::str(tensor.sizes()) +
                              "; it must be " + expected + ".");
    }
}

void MRLEvaluator::setGlobals(const std::vector<double>& values) {
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < globalNames.size(); i++)
        if (values.at(i) != lastGlobals[i]) {
            globalValues[i].fill_(values[i]);
            lastGlobals[i] = values[i];
        }
}

MRLModelOutput MRLEvaluator::run(const torch::Tensor& positions, const std::vector<torch::Tensor>& geometry,
                                 bool includeForces) {
    int numThreads = settings.threads;
    if (device.is_cpu() && numThreads > 0 && at::get_num_threads() != numThreads)
        at::set_num_threads(numThreads);
    std::vector<torch::jit::IValue> inputs = {positions};
    if (usesNeighborList())
        inputs.insert(inputs.end(), {atomicNumbers, moleculeIndices});
    inputs.insert(inputs.end(), geometry.begin(), geometry.end());
    inputs.insert(inputs.end(), globalValues.begin(), globalValues.end());
    if (package) {
        std::vector<torch::Tensor> tensors;
        for (const torch::jit::IValue& input : inputs)
            tensors.push_back(input.toTensor().detach());
        return runPackage(tensors, includeForces);
    }
    bool needGradients = includeForces && (!outputsForces || !derivativeOfGlobal.empty());
    torch::jit::IValue result;
    {
        std::unique_ptr<torch::NoGradGuard> noGrad;
        if (!needGradients && !outputsForces)
            noGrad = std::make_unique<torch::NoGradGuard>();
        try {
            result = module.forward(inputs);
        } catch (const std::exception& e) {
            throw OpenMMException("MRLForce: the model's forward raised an error: " + describeTorchError(e));
        }
    }
    MRLModelOutput output;
    torch::Tensor modelForces;
    if (outputsForces) {
        if (!result.isTuple() || result.toTupleRef().elements().size() != 2)
            throw OpenMMException("MRLForce: the model declares outputs_forces, so forward must return "
                                  "(energy, forces); it returned something else.");
        output.energy = result.toTupleRef().elements()[0].toTensor();
        modelForces = result.toTupleRef().elements()[1].toTensor();
        checkTensor(modelForces, "forces", {static_cast<int64_t>(particles.size()), 3});
    } else {
        if (!result.isTensor())
            throw OpenMMException("MRLForce: the model's forward must return the energy as a tensor "
                                  "(or (energy, forces) with outputs_forces = True).");
        output.energy = result.toTensor();
    }
    checkTensor(output.energy, "energy", {});
    if (!includeForces)
        return output;
    std::vector<torch::Tensor> wrt;
    if (!outputsForces)
        wrt.push_back(positions);
    for (int g : derivativeOfGlobal)
        wrt.push_back(globalValues[g]);
    std::vector<torch::Tensor> gradients;
    if (!wrt.empty()) {
        if (!output.energy.requires_grad())
            throw OpenMMException("MRLForce: the model's energy does not depend on its inputs through autograd; "
                                  "forces cannot be computed. Do not detach the energy inside the model.");
        gradients = torch::autograd::grad({output.energy.sum()}, wrt, {}, false, false, /*allow_unused=*/true);
    }
    size_t next = 0;
    if (outputsForces) {
        output.forces = modelForces.detach();
    } else {
        torch::Tensor gradient = gradients[next++];
        output.forces = gradient.defined() ? -gradient : torch::zeros_like(positions);
    }
    for (size_t i = 0; i < derivativeOfGlobal.size(); i++)
        output.derivatives.push_back(gradients[next++]);
    return output;
}

/**
 * One call of an AOTInductor package's model: its graph returns the energy, the forces and dE/d(global
 * parameter) for every global parameter (docs/model-interface.md), whatever includeForces asks.
 */
MRLModelOutput MRLEvaluator::runPackage(const std::vector<torch::Tensor>& inputs, bool includeForces) {
    std::vector<torch::Tensor> result;
    try {
        result = package->run(inputs);
    } catch (const std::exception& e) {
        throw OpenMMException("MRLForce: the model's package raised an error: " + describeTorchError(e));
    }
    size_t expected = 2 + globalValues.size();
    if (result.size() != expected)
        throw OpenMMException("MRLForce: the model's package returned " + std::to_string(result.size()) +
                              " tensors; a package with " + std::to_string(globalValues.size()) +
                              " global parameters returns " + std::to_string(expected) +
                              " (energy, forces, then dE/d(parameter) for each). Export it with openmmmrl.export_pt2.");
    MRLModelOutput output;
    output.energy = result[0];
    checkTensor(output.energy, "energy", {});
    if (!includeForces)
        return output;
    checkTensor(result[1], "forces", {static_cast<int64_t>(particles.size()), 3});
    output.forces = result[1];
    for (int g : derivativeOfGlobal)
        output.derivatives.push_back(result[2 + g]);
    return output;
}

double MRLEvaluator::checkedEnergy(const torch::Tensor& energy) {
    double value = energy.item<double>();
    if (!std::isfinite(value))
        throw OpenMMException("MRLForce: the model returned a non-finite energy (" + std::to_string(value) +
                              " kJ/mol). Check the positions (overlapping atoms?) and the model.");
    return value;
}

void MRLEvaluator::addDerivatives(const MRLModelOutput& output, std::map<std::string, double>& derivatives) const {
    for (size_t i = 0; i < output.derivatives.size(); i++) {
        const torch::Tensor& gradient = output.derivatives[i];
        derivatives[globalNames[derivativeOfGlobal[i]]] += gradient.defined() ? gradient.item<double>() : 0.0;
    }
}

double MRLEvaluator::compute(const double* positions, const Vec3* boxVectors, const std::vector<double>& globals,
                             bool includeForces, std::vector<double>& forces,
                             std::map<std::string, double>& derivatives) {
    fill(positionTensor, positions);
    const Vec3* box = periodic ? boxVectors : nullptr;
    std::vector<torch::Tensor> geometry;
    if (neighborList) {
        updateGraph(positions, box);
        geometry = {edgeIndex, edgeShift};
    } else if (periodic) {
        double values[9];
        for (int i = 0; i < 3; i++)
            for (int d = 0; d < 3; d++)
                values[3 * i + d] = box[i][d];
        fill(boxTensor, values);
        geometry = {boxTensor};
    }
    setGlobals(globals);
    MRLModelOutput output = run(positionTensor, geometry, includeForces);
    double energy = checkedEnergy(output.energy);
    if (includeForces) {
        copyForces(output.forces, forces);
        addDerivatives(output, derivatives);
    }
    return energy;
}
