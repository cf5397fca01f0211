// SPDX-License-Identifier: MIT
// Shared helpers of the C++ tests: platform loading, model paths, systems and an analytic reference.
#ifndef MRL_TEST_UTILITIES_H_
#define MRL_TEST_UTILITIES_H_

#include "MRLForce.h"
#include "MRLSanitizers.h"
#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

extern "C" void registerMRLReferenceKernelFactories();

namespace MRLTest {

/** Load the CPU platform from the OpenMM wheel and register this build's kernels (once). */
inline void loadPlatforms() {
    static bool loaded = false;
    if (loaded)
        return;
    bool haveCpu = false;
    for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
        haveCpu = haveCpu || OpenMM::Platform::getPlatform(i).getName() == "CPU";
    if (!haveCpu)
        OpenMM::Platform::loadPluginLibrary(std::string(OPENMM_PLUGIN_DIR) + "/libOpenMMCPU.so");
    registerMRLReferenceKernelFactories();
#ifdef MRL_OPENCL_PLUGIN
    // OpenMM's OpenCL platform (PoCL runs it on the CPU), then this project's OpenCL kernel plugin.
    try {
        OpenMM::Platform::getPlatformByName("OpenCL");
    } catch (const std::exception&) {
        OpenMM::Platform::loadPluginLibrary(std::string(OPENMM_PLUGIN_DIR) + "/libOpenMMOpenCL.so");
    }
    OpenMM::Platform::loadPluginLibrary(MRL_OPENCL_PLUGIN);
#endif
#ifdef MRL_CUDA_PLUGIN
    // OpenMM's CUDA platform and this project's CUDA kernel load only where a CUDA driver exists.
    try {
        try {
            OpenMM::Platform::getPlatformByName("CUDA");
        } catch (const OpenMM::OpenMMException&) {
            OpenMM::Platform::loadPluginLibrary(std::string(OPENMM_PLUGIN_DIR) + "/libOpenMMCUDA.so");
        }
        OpenMM::Platform::loadPluginLibrary(MRL_CUDA_PLUGIN);
    } catch (const std::exception&) {
        // No CUDA driver here: the CUDA tests skip themselves.
    }
#endif
    loaded = true;
}

/** Whether a platform exists here and has the MRLForce kernel. */
inline bool havePlatformWithMRL(const std::string& name) {
    try {
        OpenMM::Platform& platform = OpenMM::Platform::getPlatformByName(name);
        return platform.supportsKernels({"CalcMRLForce"});
    } catch (const std::exception&) {
        return false;
    }
}

inline bool haveOpenCL() {
    return havePlatformWithMRL("OpenCL");
}

inline std::string model(const std::string& name) {
    return std::string(MRL_TEST_MODELS) + "/" + name;
}

/** The pair potential of tests/models/make_models.py: A (1 - (r/rc)^2)^3 for r < rc, kJ/mol. */
constexpr double PairA = 3.0, PairCutoff = 0.6;

inline double pairEnergy(double r) {
    double x = (r / PairCutoff) * (r / PairCutoff);
    return x < 1.0 ? PairA * std::pow(1.0 - x, 3) : 0.0;
}

/** -dphi/dr / r, so that the force on j is  delta * this  (delta = r_j - r_i). */
inline double pairForceOverR(double r) {
    double x = (r / PairCutoff) * (r / PairCutoff);
    return x < 1.0 ? 6.0 * PairA * std::pow(1.0 - x, 2) / (PairCutoff * PairCutoff) : 0.0;
}

/**
 * The analytic energy (kJ/mol) and forces (kJ/mol/nm) of the pair potential over the listed atoms.  With a
 * box, every image in -2..2 of each box vector is searched for the nearest one: a brute-force reference
 * independent of the plugin's neighbor list.
 */
inline double analyticPairEnergy(const std::vector<OpenMM::Vec3>& positions, const std::vector<int>& atoms,
                                 const OpenMM::Vec3* box, std::vector<OpenMM::Vec3>& forces) {
    forces.assign(positions.size(), OpenMM::Vec3());
    double energy = 0.0;
    int range = box ? 2 : 0;
    for (size_t a = 0; a < atoms.size(); a++)
        for (size_t b = a + 1; b < atoms.size(); b++) {
            int i = atoms[a], j = atoms[b];
            OpenMM::Vec3 best = positions[j] - positions[i];
            for (int x = -range; x <= range; x++)
                for (int y = -range; y <= range; y++)
                    for (int z = -range; z <= range; z++) {
                        OpenMM::Vec3 delta = positions[j] - positions[i];
                        if (box)
                            delta += box[0] * x + box[1] * y + box[2] * z;
                        if (delta.dot(delta) < best.dot(best))
                            best = delta;
                    }
            double r = std::sqrt(best.dot(best));
            energy += pairEnergy(r);
            OpenMM::Vec3 f = best * pairForceOverR(r);
            forces[j] += f;
            forces[i] -= f;
        }
    return energy;
}

/** n particles at random positions in a cube of the given edge (nm), no two closer than minDistance. */
inline std::vector<OpenMM::Vec3> randomPositions(int n, double edge, unsigned seed, double minDistance = 0.1) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<double> uniform(0.0, edge);
    std::vector<OpenMM::Vec3> positions;
    while (static_cast<int>(positions.size()) < n) {
        OpenMM::Vec3 candidate(uniform(random), uniform(random), uniform(random));
        bool ok = true;
        for (const OpenMM::Vec3& p : positions) {
            OpenMM::Vec3 d = candidate - p;
            ok = ok && d.dot(d) > minDistance * minDistance;
        }
        if (ok)
            positions.push_back(candidate);
    }
    return positions;
}

inline OpenMM::System* makeSystem(int n, const OpenMM::Vec3* box = nullptr) {
    OpenMM::System* system = new OpenMM::System();
    for (int i = 0; i < n; i++)
        system->addParticle(12.0);
    if (box)
        system->setDefaultPeriodicBoxVectors(box[0], box[1], box[2]);
    return system;
}

/** An MRLForce for a "graph/1" test model over n carbon atoms, periodic or not. */
inline MRLPlugin::MRLForce* makeGraphForce(const std::string& name, int n, bool periodic) {
    MRLPlugin::MRLForce* force = new MRLPlugin::MRLForce(model(name));
    force->setAtomicNumbers(std::vector<int>(n, 6));
    force->setUsesPeriodicBoundaryConditions(periodic);
    return force;
}

inline void expectVec3Near(const OpenMM::Vec3& expected, const OpenMM::Vec3& actual, double tolerance,
                           const std::string& what) {
    for (int d = 0; d < 3; d++)
        EXPECT_NEAR(expected[d], actual[d], tolerance) << what << " component " << d;
}

/** Expect that a call throws an OpenMMException whose text contains the fragment. */
#define EXPECT_THROW_MESSAGE(statement, fragment)                                                                      \
    try {                                                                                                              \
        statement;                                                                                                     \
        ADD_FAILURE() << "no exception was thrown, expected one containing: " << fragment;                             \
    } catch (const OpenMM::OpenMMException& e) {                                                                       \
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message was: " << e.what();             \
    }

} // namespace MRLTest

#endif // MRL_TEST_UTILITIES_H_
