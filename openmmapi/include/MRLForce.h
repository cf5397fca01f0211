// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLFORCE_H_
#define OPENMM_MRLFORCE_H_

#include "MRLModelInterface.h"
#include "internal/MRLSettings.h"
#include "internal/windowsExportMRL.h"
#include "openmm/Context.h"
#include "openmm/Force.h"
#include <map>
#include <string>
#include <vector>

namespace MRLPlugin {

class MRLPackage;

/**
 * A Force whose energy and forces come from a PyTorch model (a machine-learned potential): a TorchScript
 * module (torch.jit.save) or an AOTInductor package (.pt2, openmmmrl.export_pt2), told apart by the file's
 * content.
 *
 * The model file declares how it is called through module attributes, or a package's metadata (see
 * docs/model-interface.md):
 * - mrl_interface = "positions": openmm-torch's convention, forward(positions[N,3]) or, with periodic
 *   boundary conditions, forward(positions[N,3], box[3,3]).  A module without the attribute is
 *   treated as "positions", so any openmm-torch model runs unchanged.
 * - mrl_interface = "graph/1": forward(positions[N,3], atomic_numbers[N], molecule_index[N],
 *   edge_index[2,E], edge_shift[E,3]); the plugin builds the neighbor list (cutoff_nm plus a skin).
 * Global parameters follow as extra scalar tensors, in the order they were added.  Positions are
 * in nm, the energy in kJ/mol and forces in kJ/mol/nm.
 *
 * The model acts on an ML region: a subset of the System's particles (all of them by default).
 */
class OPENMM_EXPORT_MRL MRLForce : public OpenMM::Force {
public:
    /**
     * Create an MRLForce from a model file.
     *
     * @param file  the path of a file written by torch.jit.save, or of a .pt2 package (openmmmrl.export_pt2)
     */
    explicit MRLForce(const std::string& file);
    /**
     * Create an MRLForce from the bytes of a model file (what torch.jit.save writes, or a .pt2 package).
     *
     * @param modelData  a pointer to the model bytes
     * @param modelSize  the number of bytes
     */
    MRLForce(const char* modelData, size_t modelSize);
    /** The file the model was read from, or an empty string if it was given as bytes. */
    const std::string& getFile() const { return file; }
    /** The model file's bytes (a TorchScript model or a .pt2 package). */
    const std::string& getModelBytes() const { return modelBytes; }
    /** The model interface declared by the model, by name: "positions" or "graph/1". */
    const std::string& getInterface() const { return getModelInterfaceName(interface); }
    /** The model interface declared by the model. */
    ModelInterface getModelInterface() const { return interface; }
    /** How the model is stored: a TorchScript module or an AOTInductor package (.pt2), read from its content. */
    ModelFormat getModelFormat() const { return format; }
    /** The interaction cutoff declared by a "graph/1" model, measured in nm (0 for "positions" models). */
    double getCutoff() const { return cutoff; }
    /** Whether forward returns (energy, forces) instead of the energy alone. */
    bool getOutputsForces() const { return outputsForces; }
    /**
     * Set whether forward returns (energy, forces[N,3]) instead of the energy alone.  The default is
     * read from the model's outputs_forces attribute.  Forces that the model returns are used as
     * they are (they need not be conservative); otherwise forces are -dE/dpositions by autograd.
     * An AOTInductor package always returns its forces (they are part of its graph): for one, this
     * setting is true and setting it to false is an error.
     */
    void setOutputsForces(bool outputs);
    /**
     * Set the particles of the ML region, in the order the model sees them.  An empty list (the
     * default) means all particles of the System.
     *
     * @param particles  the System's particle indices; each may appear once
     */
    void setParticles(const std::vector<int>& particles);
    /** The particles of the ML region (empty: all particles of the System). */
    const std::vector<int>& getParticles() const { return particles; }
    /**
     * Set the atomic number of each ML atom, in the order of the ML region.  "graph/1" models need them.
     */
    void setAtomicNumbers(const std::vector<int>& atomicNumbers);
    /** The atomic number of each ML atom (empty if not set). */
    const std::vector<int>& getAtomicNumbers() const { return atomicNumbers; }
    /**
     * Set the molecule index of each ML atom, in the order of the ML region.  If it is not set, the
     * molecules of the System (particles joined by bonds and constraints) are used, numbered in
     * order of their first ML atom.
     */
    void setMoleculeIndices(const std::vector<int>& moleculeIndices);
    /** The molecule index of each ML atom (empty if not set). */
    const std::vector<int>& getMoleculeIndices() const { return moleculeIndices; }
    /** Set whether this force uses periodic boundary conditions (the box is passed to the model). */
    void setUsesPeriodicBoundaryConditions(bool periodic) { periodicBoundaryConditions = periodic; }
    /** Whether this force uses periodic boundary conditions. */
    bool usesPeriodicBoundaryConditions() const override { return periodicBoundaryConditions; }
    /**
     * Add a global parameter that the model receives as an extra scalar tensor argument.
     *
     * @param name          the parameter's name
     * @param defaultValue  its default value (in whatever unit the model expects)
     * @return the index of the new parameter
     */
    int addGlobalParameter(const std::string& name, double defaultValue);
    /** The number of global parameters. */
    int getNumGlobalParameters() const { return static_cast<int>(globalParameters.size()); }
    /** The name of a global parameter. */
    const std::string& getGlobalParameterName(int index) const;
    /** Set the name of a global parameter. */
    void setGlobalParameterName(int index, const std::string& name);
    /** The default value of a global parameter. */
    double getGlobalParameterDefaultValue(int index) const;
    /** Set the default value of a global parameter. */
    void setGlobalParameterDefaultValue(int index, double defaultValue);
    /**
     * Request the derivative of the energy with respect to a global parameter (by autograd), for
     * example an alchemical lambda.  It is reported by State::getEnergyParameterDerivatives().
     */
    void addEnergyParameterDerivative(const std::string& name);
    /** The number of energy parameter derivatives requested. */
    int getNumEnergyParameterDerivatives() const { return static_cast<int>(energyParameterDerivatives.size()); }
    /** The name of the global parameter of an energy derivative. */
    const std::string& getEnergyParameterDerivativeName(int index) const;
    /**
     * Set a property of how the force is computed.  Known names:
     * - "Threads": the number of LibTorch intra-op threads on the CPU ("" or "0": LibTorch's default)
     * - "Precision": "single" or "double" for the model's dtype ("": the platform's precision;
     *   Reference uses double, CPU uses single)
     * - "NeighborListSkin": the neighbor-list skin of "graph/1" models, measured in nm (default 0.05);
     *   the list is rebuilt once an atom has moved more than half of it
     * - "ReuseMemory": "true" (default) or "false".  On the CPU, the model's large temporaries are
     *   kept in the process heap for the next step instead of being returned to the operating system
     *   and faulted in again (glibc's mmap and trim thresholds are raised to 1 GiB, for the whole
     *   process); measured 2.3x faster at 10000 atoms.  "false" leaves malloc as it was.
     * - "UseCUDAGraphs": "true" or "false" (default).  On the CUDA platform, capture the model's forward
     *   and backward pass in a CUDA graph and replay it each step (the model must be capturable: no host
     *   synchronisation, no data-dependent shapes).  Ignored by the other platforms.
     * - "CUDAGraphWarmupSteps": the number of steps run eagerly before the capture (default 2).
     */
    void setProperty(const std::string& name, const std::string& value);
    /** All properties that were set, as text. */
    const std::map<std::string, std::string>& getProperties() const { return properties; }
    /** The properties parsed: what every property that was set means, the defaults for the rest. */
    const MRLSettings& getSettings() const { return settings; }
    /** The names of the properties that setProperty() accepts. */
    static std::vector<std::string> getPropertyNames();

protected:
    OpenMM::ForceImpl* createImpl() const override;

private:
    friend class MRLForceImpl;

    void inspectModel(const std::string& source);
    void inspectPackage(const MRLPackage& package, const std::string& source);
    void checkGlobalParameterIndex(int index) const;
    struct GlobalParameterInfo {
        std::string name;
        double defaultValue;
    };
    std::string file, modelBytes;
    ModelInterface interface = ModelInterface::Positions;
    ModelFormat format = ModelFormat::TorchScript;
    double cutoff = 0.0;
    int numForwardArguments = 0; // read from the model once, when the force is created
    bool outputsForces = false, periodicBoundaryConditions = false;
    std::vector<int> particles, atomicNumbers, moleculeIndices;
    std::vector<GlobalParameterInfo> globalParameters;
    std::vector<std::string> energyParameterDerivatives;
    std::map<std::string, std::string> properties;
    MRLSettings settings;
};

} // namespace MRLPlugin

#endif // OPENMM_MRLFORCE_H_
