// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLSETTINGS_H_
#define OPENMM_MRLSETTINGS_H_

#include "internal/windowsExportMRL.h"
#include <string>
#include <vector>

namespace MRLPlugin {

/** The floating-point precision a model runs in. */
enum class Precision {
    Platform, ///< the platform's: double on Reference and in double-precision contexts, single otherwise
    Single,   ///< float32
    Double    ///< float64
};

/**
 * How an MRLForce is computed: its properties (MRLForce::setProperty), parsed and checked once, when they
 * are set.  An empty value stands for the default.
 */
struct OPENMM_EXPORT_MRL MRLSettings {
    int threads = 0; ///< "Threads": LibTorch intra-op threads on the CPU; 0: LibTorch's default
    Precision precision = Precision::Platform; ///< "Precision": the model's precision
    double neighborListSkinNm = 0.05;          ///< "NeighborListSkin": the skin of "graph/1" neighbor lists, nm
    bool reuseMemory = true;                   ///< "ReuseMemory": keep the model's large temporaries in the heap (CPU)
    bool useCudaGraphs = false;                ///< "UseCUDAGraphs": replay the model as a CUDA graph (CUDA)
    int cudaGraphWarmupSteps = 2;              ///< "CUDAGraphWarmupSteps": eager steps before the capture (CUDA)

    /**
     * Set one property from its text.  Throws an OpenMMException that names the property and what it must
     * be if the name is unknown or the value is invalid; the settings are then unchanged.
     *
     * @param name   a property name (getPropertyNames())
     * @param value  its value as text; "" sets the default
     */
    void set(const std::string& name, const std::string& value);
    /** The precision to run a model in: this one, or the platform's if it is Precision::Platform. */
    Precision resolvePrecision(Precision platformPrecision) const;
    /** The names of the properties that set() accepts, in the order they are documented. */
    static const std::vector<std::string>& getPropertyNames();
};

} // namespace MRLPlugin

#endif // OPENMM_MRLSETTINGS_H_
