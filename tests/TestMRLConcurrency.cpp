// SPDX-License-Identifier: MIT
// Contexts with MRLForce created, stepped and destroyed on many threads at once: every energy equals the one
// computed on a single thread, and nothing crashes.
#include "MRLTestUtilities.h"
#include "openmm/State.h"
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <tuple>

using namespace MRLPlugin;
using namespace MRLTest;
using namespace OpenMM;

namespace {

constexpr int NumThreads = 8, NumAtoms = 12, NumSteps = 3;

/** 1000 lifetimes, or MRL_TEST_LIFETIMES of them (fewer for a run under Helgrind or ThreadSanitizer). */
int numLifetimes() {
    const char* value = std::getenv("MRL_TEST_LIFETIMES");
    return value != nullptr ? std::max(1, std::atoi(value)) : 1000;
}
/// One lifetime in this many runs on OpenCL (where available): PoCL compiles its kernels for every Context.
constexpr int OpenCLEvery = 25;

/// What one Context lifetime runs: a model, a platform and one of two starting geometries.
struct Case {
    std::string model, platform;
    int geometry;
    bool operator<(const Case& other) const {
        return std::tie(model, platform, geometry) < std::tie(other.model, other.platform, other.geometry);
    }
};

/// The energies (kJ/mol) at the start and after NumSteps Verlet steps.
struct Energies {
    double initial, final;
};

/**
 * OpenMM's CPU platform keeps the data of every Context in one std::map that contextCreated and contextDestroyed
 * change without a lock, and that its kernels read (Helgrind reports it; OpenMM 8, CpuPlatform.cpp).  So CPU
 * Contexts are created and destroyed one at a time here (exclusive) while they evaluate and step concurrently
 * (shared); Reference and OpenCL need no lock.
 */
std::shared_mutex cpuPlatformMap;

/** A whole lifetime: System + MRLForce, Context, an energy and force evaluation, a few steps, destruction. */
Energies runLifetime(const Case& c) {
    std::unique_ptr<System> system(makeSystem(NumAtoms));
    if (c.model == "pair_graph.pt")
        system->addForce(makeGraphForce(c.model, NumAtoms, false));
    else
        system->addForce(new MRLForce(model(c.model)));
    VerletIntegrator integrator(0.0005);
    bool cpu = c.platform == "CPU";
    std::unique_ptr<Context> context;
    {
        std::unique_lock<std::shared_mutex> lock(cpuPlatformMap, std::defer_lock);
        if (cpu)
            lock.lock();
        context = std::make_unique<Context>(*system, integrator, Platform::getPlatformByName(c.platform));
    }
    Energies energies;
    {
        std::shared_lock<std::shared_mutex> lock(cpuPlatformMap, std::defer_lock);
        if (cpu)
            lock.lock();
        context->setPositions(randomPositions(NumAtoms, 0.8, 100 + c.geometry));
        energies.initial = context->getState(State::Energy | State::Forces).getPotentialEnergy();
        integrator.step(NumSteps);
        energies.final = context->getState(State::Energy).getPotentialEnergy();
    }
    std::unique_lock<std::shared_mutex> lock(cpuPlatformMap, std::defer_lock);
    if (cpu)
        lock.lock();
    context.reset();
    return energies;
}

/** The case of lifetime i: models and geometries alternate; every OpenCLEvery-th one runs on OpenCL. */
Case caseOf(int i, bool openCL) {
    std::string platform = openCL && i % OpenCLEvery == 0 ? "OpenCL" : (i % 4 < 2 ? "Reference" : "CPU");
    return {i % 2 == 0 ? "pair_positions.pt" : "pair_graph.pt", platform, (i / 3) % 2};
}

/** Reference and CPU run the same operations in the same order on every thread: their energies agree exactly.
 *  OpenCL gets a relative tolerance of 1e-6 (its force and energy sums need not be ordered). */
bool sameEnergy(const std::string& platform, double expected, double actual) {
    if (platform != "OpenCL")
        return expected == actual;
    return std::abs(expected - actual) <= 1e-6 * std::abs(expected);
}

} // namespace

TEST(MRLConcurrency, ThreadsCreatingSteppingAndDestroyingContextsGetTheSingleThreadedEnergies) {
    loadPlatforms(); // on this thread, before any other: plugin loading is not thread-safe in OpenMM
    bool openCL = haveOpenCL();
    const int lifetimes = numLifetimes();
    std::map<Case, Energies> expected;
    for (int i = 0; i < lifetimes; i++) {
        Case c = caseOf(i, openCL);
        if (!expected.count(c))
            expected[c] = runLifetime(c);
    }
    for (const auto& [c, energies] : expected)
        ASSERT_GT(energies.initial, 1.0) << c.model << " on " << c.platform << ": the geometry should interact";

    std::atomic<int> next(0), mismatches(0), failures(0);
    std::mutex reportLock;
    std::vector<std::string> reports;
    auto worker = [&]() {
        for (int i = next++; i < lifetimes; i = next++) {
            Case c = caseOf(i, openCL);
            try {
                Energies energies = runLifetime(c);
                const Energies& want = expected.at(c);
                if (!sameEnergy(c.platform, want.initial, energies.initial) ||
                    !sameEnergy(c.platform, want.final, energies.final)) {
                    mismatches++;
                    std::lock_guard<std::mutex> lock(reportLock);
                    reports.push_back(c.model + " on " + c.platform + ": " + std::to_string(energies.initial) + ", " +
                                      std::to_string(energies.final) + " instead of " + std::to_string(want.initial) +
                                      ", " + std::to_string(want.final));
                }
            } catch (const std::exception& e) {
                failures++;
                std::lock_guard<std::mutex> lock(reportLock);
                reports.push_back(c.model + " on " + c.platform + " threw: " + e.what());
            }
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < NumThreads; t++)
        threads.emplace_back(worker);
    for (std::thread& thread : threads)
        thread.join();
    for (size_t r = 0; r < std::min<size_t>(reports.size(), 10); r++)
        ADD_FAILURE() << reports[r];
    EXPECT_EQ(mismatches.load(), 0) << "of " << lifetimes << " lifetimes on " << NumThreads << " threads";
    EXPECT_EQ(failures.load(), 0);
    if (!openCL)
        std::cout << "OpenCL is not available here: Reference and CPU only\n";
}
