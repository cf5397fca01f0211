// SPDX-License-Identifier: MIT
// Energies and forces of MRLForce on the Reference and CPU platforms, against analytic potentials,
// finite differences and each other.
#include "MRLTestUtilities.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/State.h"
#include <map>
#include <memory>

using namespace MRLPlugin;
using namespace MRLTest;
using namespace OpenMM;

namespace {

class MRLForceOnPlatform : public ::testing::TestWithParam<std::string> {
protected:
    // Parameters: "Reference", "CPU", "OpenCL_<precision>" or "CUDA_<precision>" (single, mixed, double).
    void SetUp() override {
        loadPlatforms();
        if ((platformName() == "OpenCL" || platformName() == "CUDA") && !havePlatformWithMRL(platformName()))
            GTEST_SKIP() << "OpenMM's " << platformName()
                         << " platform or the MRLForce kernel for it is not available here";
    }
    std::string platformName() { return GetParam().substr(0, GetParam().find('_')); }
    Platform& platform() { return Platform::getPlatformByName(platformName()); }
    std::map<std::string, std::string> properties() {
        size_t split = GetParam().find('_');
        if (split == std::string::npos)
            return {};
        return {{"Precision", GetParam().substr(split + 1)}};
    }
    // Reference and OpenCL/CUDA in double precision run the model in double (the GPU platforms add forces
    // in 64-bit fixed point: about 1e-9 relative); CPU and single/mixed precision run it in single.
    double relativeTolerance() {
        if (GetParam() == "Reference")
            return 1e-10;
        return GetParam() == "OpenCL_double" || GetParam() == "CUDA_double" ? 1e-8 : 2e-5;
    }
    State evaluate(System& system, const std::vector<Vec3>& positions, int types = State::Energy | State::Forces) {
        VerletIntegrator integrator(0.001);
        Context context(system, integrator, platform(), properties());
        context.setPositions(positions);
        return context.getState(types);
    }
    void expectMatchesAnalytic(const State& state, const std::vector<Vec3>& positions, const std::vector<int>& atoms,
                               const Vec3* box) {
        std::vector<Vec3> forces;
        double energy = analyticPairEnergy(positions, atoms, box, forces);
        ASSERT_GT(energy, 1.0) << "the test geometry should have interacting pairs";
        EXPECT_NEAR(energy, state.getPotentialEnergy(), relativeTolerance() * energy);
        double scale = 0;
        for (const Vec3& f : forces)
            scale = std::max(scale, std::sqrt(f.dot(f)));
        for (size_t i = 0; i < positions.size(); i++)
            expectVec3Near(forces[i], state.getForces()[i], relativeTolerance() * scale,
                           "force on " + std::to_string(i));
    }
};

std::vector<int> allAtoms(int n) {
    std::vector<int> atoms(n);
    for (int i = 0; i < n; i++)
        atoms[i] = i;
    return atoms;
}

TEST_P(MRLForceOnPlatform, PositionsModelMatchesAnalyticPotential) {
    int n = 30;
    std::unique_ptr<System> system(makeSystem(n));
    system->addForce(new MRLForce(model("pair_positions.pt")));
    std::vector<Vec3> positions = randomPositions(n, 1.2, 1);
    expectMatchesAnalytic(evaluate(*system, positions), positions, allAtoms(n), nullptr);
}

TEST_P(MRLForceOnPlatform, ForcesMatchFiniteDifferences) {
    int n = 20;
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = makeGraphForce("pair_graph.pt", n, false);
    system->addForce(force);
    force->setProperty("Precision", "double");
    std::vector<Vec3> positions = randomPositions(n, 1.0, 2);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, platform(), properties());
    context.setPositions(positions);
    State state = context.getState(State::Forces | State::Energy);
    // Displace all atoms along the force direction: dE = -|F| * step.
    double norm = 0;
    for (const Vec3& f : state.getForces())
        norm += f.dot(f);
    norm = std::sqrt(norm);
    const double step = 1e-5;
    std::vector<Vec3> plus(positions), minus(positions);
    for (int i = 0; i < n; i++) {
        Vec3 direction = state.getForces()[i] / norm;
        plus[i] += direction * step;
        minus[i] -= direction * step;
    }
    context.setPositions(plus);
    double energyPlus = context.getState(State::Energy).getPotentialEnergy();
    context.setPositions(minus);
    double energyMinus = context.getState(State::Energy).getPotentialEnergy();
    double derivative = (energyPlus - energyMinus) / (2 * step);
    // Single precision stores positions in float: a 1e-5 nm step is then resolved to ~1e-3.
    bool single = GetParam() == "OpenCL_single" || GetParam() == "CUDA_single";
    EXPECT_NEAR(-norm, derivative, (single ? 2e-3 : 1e-5) * norm);
}

TEST_P(MRLForceOnPlatform, GraphModelMatchesPositionsModelWithoutBox) {
    int n = 40;
    std::vector<Vec3> positions = randomPositions(n, 1.5, 3);
    std::unique_ptr<System> dense(makeSystem(n)), graph(makeSystem(n));
    dense->addForce(new MRLForce(model("pair_positions.pt")));
    MRLForce* force = makeGraphForce("pair_graph.pt", n, false);
    graph->addForce(force);
    State expected = evaluate(*dense, positions), actual = evaluate(*graph, positions);
    EXPECT_NEAR(expected.getPotentialEnergy(), actual.getPotentialEnergy(),
                relativeTolerance() * std::abs(expected.getPotentialEnergy()));
    for (int i = 0; i < n; i++)
        expectVec3Near(expected.getForces()[i], actual.getForces()[i], 1e-4, "force on " + std::to_string(i));
    expectMatchesAnalytic(actual, positions, allAtoms(n), nullptr);
}

// Rectangular and triclinic boxes (OpenMM's reduced form); atoms lie partly outside the box.
const Vec3 rectangular[3] = {Vec3(1.5, 0, 0), Vec3(0, 1.4, 0), Vec3(0, 0, 1.3)};
const Vec3 triclinic[3] = {Vec3(1.6, 0, 0), Vec3(0.5, 1.5, 0), Vec3(-0.4, 0.6, 1.4)};

TEST_P(MRLForceOnPlatform, PeriodicModelsMatchAnalyticPotential) {
    for (const Vec3* box : {rectangular, triclinic}) {
        int n = 40;
        std::vector<Vec3> positions = randomPositions(n, 1.8, 4);
        for (Vec3& p : positions)
            p -= Vec3(0.2, 0.2, 0.2);
        std::unique_ptr<System> dense(makeSystem(n, box)), graph(makeSystem(n, box));
        MRLForce* denseForce = new MRLForce(model("pair_positions_periodic.pt"));
        denseForce->setUsesPeriodicBoundaryConditions(true);
        dense->addForce(denseForce);
        MRLForce* graphForce = makeGraphForce("pair_graph.pt", n, true);
        graph->addForce(graphForce);
        SCOPED_TRACE(box == rectangular ? "rectangular box" : "triclinic box");
        expectMatchesAnalytic(evaluate(*graph, positions), positions, allAtoms(n), box);
        if (box == rectangular) // the dense model's minimum image is exact only for rectangular boxes
            expectMatchesAnalytic(evaluate(*dense, positions), positions, allAtoms(n), box);
    }
}

TEST_P(MRLForceOnPlatform, SubsetOnlyMovesItsOwnAtoms) {
    int n = 30;
    std::vector<Vec3> positions = randomPositions(n, 1.2, 5);
    std::vector<int> subset = {3, 7, 8, 12, 15, 16, 20, 21, 25, 29};
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = new MRLForce(model("pair_graph.pt"));
    force->setParticles(subset);
    force->setAtomicNumbers(std::vector<int>(subset.size(), 6));
    system->addForce(force);
    State state = evaluate(*system, positions);
    expectMatchesAnalytic(state, positions, subset, nullptr);
    for (int i = 0; i < n; i++)
        if (std::find(subset.begin(), subset.end(), i) == subset.end()) {
            EXPECT_EQ(Vec3(), state.getForces()[i]) << "atom " << i << " is outside the ML region";
        }
}

TEST_P(MRLForceOnPlatform, GlobalParametersAndTheirDerivatives) {
    int n = 20;
    std::vector<Vec3> positions = randomPositions(n, 1.0, 6);
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = new MRLForce(model("scaled_pair.pt"));
    force->addGlobalParameter("scale", 0.5);
    force->addGlobalParameter("shift", 2.0);
    force->addEnergyParameterDerivative("scale");
    system->addForce(force);
    std::vector<Vec3> forces;
    double pair = analyticPairEnergy(positions, allAtoms(n), nullptr, forces);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, platform(), properties());
    context.setPositions(positions);
    State state = context.getState(State::Energy | State::Forces | State::ParameterDerivatives);
    double tolerance = relativeTolerance() * pair;
    EXPECT_NEAR(0.5 * pair + 2.0, state.getPotentialEnergy(), tolerance);
    EXPECT_NEAR(pair, state.getEnergyParameterDerivatives().at("scale"), tolerance);
    expectVec3Near(forces[0] * 0.5, state.getForces()[0], tolerance, "scaled force");
    context.setParameter("scale", 2.0);
    context.setParameter("shift", -1.0);
    state = context.getState(State::Energy | State::ParameterDerivatives);
    EXPECT_NEAR(2.0 * pair - 1.0, state.getPotentialEnergy(), tolerance);
}

TEST_P(MRLForceOnPlatform, ModelThatOutputsForces) {
    int n = 10;
    std::vector<Vec3> positions = randomPositions(n, 1.0, 7);
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = new MRLForce(model("harmonic_forces.pt"));
    ASSERT_TRUE(force->getOutputsForces());
    system->addForce(force);
    State state = evaluate(*system, positions);
    double energy = 0;
    for (int i = 0; i < n; i++) {
        energy += 50.0 * positions[i].dot(positions[i]);
        expectVec3Near(positions[i] * -100.0, state.getForces()[i], relativeTolerance() * 200, "force");
    }
    EXPECT_NEAR(energy, state.getPotentialEnergy(), relativeTolerance() * energy);
}

TEST_P(MRLForceOnPlatform, ForceGroupSelectsTheForce) {
    int n = 10;
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = new MRLForce(model("pair_positions.pt"));
    force->setForceGroup(3);
    system->addForce(force);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, platform(), properties());
    context.setPositions(randomPositions(n, 0.8, 8));
    EXPECT_GT(context.getState(State::Energy, false, 1 << 3).getPotentialEnergy(), 1.0);
    EXPECT_EQ(0.0, context.getState(State::Energy, false, 1 << 0).getPotentialEnergy());
}

TEST_P(MRLForceOnPlatform, MoleculesComeFromBondsUnlessGiven) {
    // Ten diatomic "molecules": only pairs between different molecules interact in this model.
    int n = 20;
    std::vector<Vec3> positions = randomPositions(n, 1.0, 9, 0.12);
    std::unique_ptr<System> system(makeSystem(n));
    HarmonicBondForce* bonds = new HarmonicBondForce();
    for (int i = 0; i < n; i += 2)
        bonds->addBond(i, i + 1, 0.15, 1000.0);
    system->addForce(bonds);
    MRLForce* force = new MRLForce(model("intermolecular_graph.pt"));
    std::vector<int> z(n, 6);
    z[0] = 8;
    force->setAtomicNumbers(z);
    force->setForceGroup(1);
    system->addForce(force);
    double expected = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (i / 2 != j / 2) {
                Vec3 d = positions[j] - positions[i];
                expected += pairEnergy(std::sqrt(d.dot(d))) * z[i] * z[j] / 36.0;
            }
    VerletIntegrator integrator(0.001);
    auto energyOf = [&](System& s) {
        Context context(s, integrator, platform(), properties());
        context.setPositions(positions);
        return context.getState(State::Energy, false, 1 << 1).getPotentialEnergy();
    };
    EXPECT_NEAR(expected, energyOf(*system), relativeTolerance() * expected);
    // Explicit indices override the bonds: one molecule per atom makes every pair intermolecular.
    std::vector<int> each(n);
    for (int i = 0; i < n; i++)
        each[i] = i;
    force->setMoleculeIndices(each);
    double all = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            Vec3 d = positions[j] - positions[i];
            all += pairEnergy(std::sqrt(d.dot(d))) * z[i] * z[j] / 36.0;
        }
    EXPECT_NEAR(all, energyOf(*system), relativeTolerance() * all);
}

TEST_P(MRLForceOnPlatform, IntegerBuffersKeepTheirDtype) {
    int n = 3;
    std::vector<Vec3> positions = {Vec3(0.1, 0.2, 0.3), Vec3(0.4, -0.5, 0.6), Vec3(1, 1, 1)};
    for (std::string precision : {"single", "double"}) {
        std::unique_ptr<System> system(makeSystem(n));
        MRLForce* force = new MRLForce(model("integer_buffer.pt"));
        force->setProperty("Precision", precision);
        system->addForce(force);
        State state = evaluate(*system, positions);
        // The model's precision, limited by the platform's: OpenCL keeps positions in float unless its
        // precision is double or mixed, and adds forces in 64-bit fixed point (2^-32 kJ/mol/nm).
        double tolerance = precision == "double" ? 1e-12 : 1e-6;
        if (platformName() == "OpenCL")
            tolerance = std::max(tolerance, GetParam() == "OpenCL_double" ? 1e-9 : 1e-6);
        EXPECT_NEAR(2.0 * positions[1].dot(positions[1]), state.getPotentialEnergy(), tolerance) << precision;
        expectVec3Near(positions[1] * -4.0, state.getForces()[1], tolerance, precision);
        expectVec3Near(Vec3(), state.getForces()[0], tolerance, precision);
    }
}

INSTANTIATE_TEST_SUITE_P(Platforms, MRLForceOnPlatform,
                         ::testing::Values("Reference", "CPU", "OpenCL_single", "OpenCL_mixed", "OpenCL_double",
                                           "CUDA_single", "CUDA_mixed", "CUDA_double"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(MRLForce, ReferenceAndCpuPlatformsAgree) {
    loadPlatforms();
    int n = 60;
    std::vector<Vec3> positions = randomPositions(n, 1.6, 10);
    std::unique_ptr<System> system(makeSystem(n, triclinic));
    MRLForce* force = makeGraphForce("pair_graph.pt", n, true);
    system->addForce(force);
    std::vector<State> states;
    for (std::string name : {"Reference", "CPU"}) {
        VerletIntegrator integrator(0.001);
        Context context(*system, integrator, Platform::getPlatformByName(name));
        context.setPositions(positions);
        states.push_back(context.getState(State::Energy | State::Forces));
    }
    double energy = states[0].getPotentialEnergy();
    EXPECT_NEAR(energy, states[1].getPotentialEnergy(), 1e-5 * std::abs(energy));
    for (int i = 0; i < n; i++)
        expectVec3Near(states[0].getForces()[i], states[1].getForces()[i], 1e-3, "force on " + std::to_string(i));
}

TEST(MRLForce, ModelGetsEdgesWithinTheCutoffWhateverTheListHistory) {
    // One context has built its list elsewhere (a far-away configuration inside the skin); both must
    // then pass the model exactly the same edges, all within the cutoff.
    loadPlatforms();
    int n = 50;
    std::vector<Vec3> positions = randomPositions(n, 1.4, 12, 0.0);
    std::unique_ptr<System> system(makeSystem(n, rectangular));
    MRLForce* force = makeGraphForce("longest_edge.pt", n, true);
    force->setProperty("NeighborListSkin", "0.2");
    system->addForce(force);
    VerletIntegrator integrator1(0.001), integrator2(0.001);
    Context fresh(*system, integrator1, Platform::getPlatformByName("Reference"));
    Context moved(*system, integrator2, Platform::getPlatformByName("Reference"));
    std::vector<Vec3> nearby(positions);
    for (int i = 0; i < n; i++)
        nearby[i] += Vec3(0.04, -0.03, 0.02) * ((i % 3) - 1.0); // less than half the skin
    moved.setPositions(nearby);
    moved.getState(State::Energy);
    fresh.setPositions(positions);
    moved.setPositions(positions);
    double a = fresh.getState(State::Energy).getPotentialEnergy(),
           b = moved.getState(State::Energy).getPotentialEnergy();
    EXPECT_EQ(a, b);
    double numEdges = std::floor(a), longest = a - numEdges; // the energy is E + the longest edge (< 1 nm)
    EXPECT_LT(longest, PairCutoff);
    EXPECT_GT(longest, 0.9 * PairCutoff);
    EXPECT_GT(numEdges, 100);
}

TEST(MRLForce, NeighborListFollowsAtomsDuringDynamics) {
    // Run MD with a small skin so the list is rebuilt many times, and compare each step to a fresh list.
    loadPlatforms();
    int n = 30;
    std::unique_ptr<System> system(makeSystem(n, rectangular));
    MRLForce* force = makeGraphForce("pair_graph.pt", n, true);
    force->setProperty("NeighborListSkin", "0.01");
    system->addForce(force);
    VerletIntegrator integrator(0.002);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(randomPositions(n, 1.3, 11, 0.2));
    context.setVelocitiesToTemperature(600.0, 1);
    for (int step = 0; step < 20; step++) {
        integrator.step(5);
        State state = context.getState(State::Positions | State::Energy | State::Forces);
        std::vector<Vec3> forces;
        double expected = analyticPairEnergy(state.getPositions(), allAtoms(n), rectangular, forces);
        ASSERT_NEAR(expected, state.getPotentialEnergy(), 1e-9 * std::max(1.0, expected)) << "step " << step;
    }
}

// The device neighbor list (OpenCL and CUDA): fixed-capacity arrays whose spare slots hold padding edges
// beyond the cutoff; the capacity grows when the list does not fit (the step is computed again) and
// shrinks at the next rebuild when it is far too roomy.  The longest_edge model's energy is E plus its
// longest edge.  On CUDA the model gets the device arrays themselves, so E is the capacity and the longest
// edge a padding edge, 2 (cutoff + skin); OpenCL runs the model on the host and passes the listed edges
// within the cutoff, so its energy is Reference's exactly (a padding edge inside the cutoff would show).
class MRLForceOnGpuPlatform : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        loadPlatforms();
        if (!havePlatformWithMRL(GetParam()))
            GTEST_SKIP() << "OpenMM's " << GetParam()
                         << " platform or the MRLForce kernel for it is not available here";
    }
    Platform& platform() { return Platform::getPlatformByName(GetParam()); }
};

TEST_P(MRLForceOnGpuPlatform, DeviceListCapacityGrowsShrinksAndPadsBeyondTheCutoff) {
    int n = 50;
    std::unique_ptr<System> system(makeSystem(n));
    MRLForce* force = makeGraphForce("longest_edge.pt", n, false);
    system->addForce(force);
    VerletIntegrator integrator1(0.001), integrator2(0.001);
    Context device(*system, integrator1, platform(), {{"Precision", "double"}});
    Context reference(*system, integrator2, Platform::getPlatformByName("Reference"));
    const bool padded = GetParam() == "CUDA";
    const double padding = 2 * (PairCutoff + 0.05);
    // The capacity seen by the model (CUDA), after checking the energy against Reference.
    auto capacity = [&](const std::vector<Vec3>& positions, const std::string& what) {
        device.setPositions(positions);
        reference.setPositions(positions);
        double energy = device.getState(State::Energy).getPotentialEnergy();
        double expected = reference.getState(State::Energy).getPotentialEnergy();
        if (!padded) {
            EXPECT_NEAR(energy, expected, 1e-9) << what;
            return 0;
        }
        double edges = std::round(energy - padding);
        EXPECT_NEAR(energy - padding, edges, 1e-9) << what << ": the longest edge passed is a padding edge";
        EXPECT_GE(edges, std::floor(expected)) << what;
        EXPECT_EQ(static_cast<int>(edges) % 256, 0) << what;
        return static_cast<int>(edges);
    };
    // 50 atoms in a 0.5 nm cube: most of the 2450 pairs are neighbors, more than the first guess (32 per atom).
    std::vector<Vec3> dense = randomPositions(n, 0.5, 21, 0.05);
    reference.setPositions(dense);
    ASSERT_GT(reference.getState(State::Energy).getPotentialEnergy(), 32 * n + 1.0);
    int grown = capacity(dense, "dense");
    // Spread out: the list shrinks at the rebuild after the one that found it too roomy.
    std::vector<Vec3> sparse = randomPositions(n, 4.0, 22);
    int roomy = capacity(sparse, "sparse");
    std::vector<Vec3> moved(sparse);
    moved[0] += Vec3(0.2, 0, 0);
    int shrunk = capacity(moved, "moved");
    if (padded) {
        EXPECT_EQ(roomy, grown);
        EXPECT_LT(shrunk, grown / 2);
    }
    capacity(dense, "dense again");
}

TEST_P(MRLForceOnGpuPlatform, DeviceListForcesFollowReferenceThroughGrowthAndDynamics) {
    for (const Vec3* box : {rectangular, triclinic}) {
        SCOPED_TRACE(box == rectangular ? "rectangular box" : "triclinic box");
        int n = 40;
        std::unique_ptr<System> system(makeSystem(n, box));
        MRLForce* force = makeGraphForce("pair_graph.pt", n, true);
        force->setProperty("NeighborListSkin", "0.01");
        system->addForce(force);
        VerletIntegrator integrator1(0.002), integrator2(0.002);
        Context device(*system, integrator1, platform(), {{"Precision", "double"}});
        Context reference(*system, integrator2, Platform::getPlatformByName("Reference"));
        auto expectAgreement = [&](const std::string& what) {
            State state = device.getState(State::Positions | State::Energy | State::Forces);
            reference.setPositions(state.getPositions());
            State expected = reference.getState(State::Energy | State::Forces);
            ASSERT_NEAR(expected.getPotentialEnergy(), state.getPotentialEnergy(),
                        1e-8 * std::max(1.0, std::abs(expected.getPotentialEnergy())))
                << what;
            for (int i = 0; i < n; i++)
                expectVec3Near(expected.getForces()[i], state.getForces()[i], 1e-6,
                               what + ", force on " + std::to_string(i));
        };
        // A dense cluster first (the list grows), then thermal motion (the list rebuilds many times).
        device.setPositions(randomPositions(n, 0.7, 23, 0.09));
        expectAgreement("dense start");
        device.setPositions(randomPositions(n, 1.3, 11, 0.2));
        device.setVelocitiesToTemperature(600.0, 1);
        for (int step = 0; step < 10; step++) {
            integrator1.step(5);
            expectAgreement("step " + std::to_string(5 * (step + 1)));
        }
    }
}

// A non-finite energy or force is an error on the GPU platforms too.  OpenCL checks on the host; CUDA flags
// it on the device and reports it when the energy is asked for (or at the next step).
TEST_P(MRLForceOnGpuPlatform, NonFiniteModelOutputsAreErrors) {
    for (const std::string name : {"nan_energy.pt", "nan_forces.pt"}) {
        SCOPED_TRACE(name);
        std::unique_ptr<System> system(makeSystem(5));
        system->addForce(new MRLForce(model(name)));
        VerletIntegrator integrator(0.001);
        Context context(*system, integrator, platform());
        context.setPositions(randomPositions(5, 1.0, 3));
        try {
            context.getState(State::Energy | State::Forces);
            ADD_FAILURE() << "no error for a non-finite model output";
        } catch (const OpenMMException& e) {
            EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Platforms, MRLForceOnGpuPlatform, ::testing::Values("OpenCL", "CUDA"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

} // namespace
