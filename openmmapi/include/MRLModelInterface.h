// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLMODELINTERFACE_H_
#define OPENMM_MRLMODELINTERFACE_H_

#include "internal/windowsExportMRL.h"
#include <optional>
#include <string>

namespace MRLPlugin {

/**
 * How the plugin calls a model, as the model's mrl_interface attribute declares it (docs/model-interface.md).
 */
enum class ModelInterface {
    /** "positions": openmm-torch's convention, forward(positions[N,3]) or forward(positions[N,3], box[3,3]). */
    Positions,
    /**
     * "graph/1": the engine builds the neighbor list, forward(positions[N,3], atomic_numbers[N],
     * molecule_index[N], edge_index[2,E], edge_shift[E,3]).
     */
    Graph1
};

/** How a model file is stored (docs/model-interface.md); MRLForce tells them apart by their content. */
enum class ModelFormat {
    /** A TorchScript module (torch.jit.save): run by LibTorch's interpreter, forces by autograd. */
    TorchScript,
    /**
     * An AOTInductor package (.pt2, openmmmrl.export_pt2): native code compiled for one machine kind and torch
     * version, with the forces and parameter derivatives computed inside its graph.
     */
    AOTInductor
};

/**
 * The interface that a model's mrl_interface attribute names.
 *
 * @param name  the attribute's value, for example "graph/1"
 * @return the interface, or nothing if this plugin knows no interface of that name
 */
OPENMM_EXPORT_MRL std::optional<ModelInterface> parseModelInterface(const std::string& name);

/** The name of an interface, as a model's mrl_interface attribute gives it: "positions" or "graph/1". */
OPENMM_EXPORT_MRL const std::string& getModelInterfaceName(ModelInterface interface);

/** The names of all interfaces, quoted, for messages: "\"positions\" or \"graph/1\"". */
OPENMM_EXPORT_MRL std::string describeModelInterfaces();

} // namespace MRLPlugin

#endif // OPENMM_MRLMODELINTERFACE_H_
