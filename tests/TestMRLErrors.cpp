// SPDX-License-Identifier: MIT
// Bad input gets an OpenMMException that names the problem, never a crash.
#include "MRLTestUtilities.h"
#include "openmm/State.h"
#include <fstream>
#include <iterator>
#include <memory>

using namespace MRLPlugin;
using namespace MRLTest;
using namespace OpenMM;

namespace {

class MRLErrors : public ::testing::Test {
protected:
    void SetUp() override { loadPlatforms(); }
    /** Create a Context for n particles with the force and evaluate it. */
    void evaluate(MRLForce* force, int n = 5, const Vec3* box = nullptr) {
        std::unique_ptr<System> system(makeSystem(n, box));
        system->addForce(force);
        VerletIntegrator integrator(0.001);
        std::unique_ptr<Context> context;
        {
            IgnoreLeaksOfAFailingContext failing; // most errors of these tests are thrown here
            context = std::make_unique<Context>(*system, integrator, Platform::getPlatformByName("Reference"));
        }
        context->setPositions(randomPositions(n, 1.0, 1));
        context->getState(State::Energy | State::Forces);
    }
};

TEST_F(MRLErrors, MissingFile) {
    EXPECT_THROW_MESSAGE(MRLForce("/nonexistent/model.pt"), "cannot open the model file '/nonexistent/model.pt'");
}

TEST_F(MRLErrors, DamagedModelArchiveIsRefusedBeforeLibTorchReadsIt) {
    // Every byte of a stored member is covered by its CRC-32: a flipped byte anywhere in the data of a real
    // TorchScript file is named (LibTorch itself would allocate an unpickled length of gigabytes; tests/fuzz).
    std::ifstream in(model("pair_graph.pt"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 1000u);
    MRLForce intact(bytes.data(), bytes.size());
    int named = 0;
    for (size_t at = 100; at < bytes.size() / 2; at += 97) {
        std::string damaged = bytes;
        damaged[at] = static_cast<char>(damaged[at] ^ 0x20);
        try {
            MRLForce force(damaged.data(), damaged.size());
        } catch (const OpenMMException& e) {
            std::string message = e.what();
            named += message.find("damaged model archive") != std::string::npos ||
                     message.find("is not a TorchScript model") != std::string::npos;
        }
    }
    EXPECT_GT(named, 0);
    std::string cut = bytes.substr(0, bytes.size() - 30);
    EXPECT_THROW_MESSAGE(MRLForce(cut.data(), cut.size()), "not a complete zip archive");
    std::string flipped = bytes;
    size_t pickle = flipped.find("data.pkl");
    ASSERT_NE(pickle, std::string::npos);
    flipped[pickle + 40] = static_cast<char>(flipped[pickle + 40] ^ 1); // inside the first member's data
    EXPECT_THROW_MESSAGE(MRLForce(flipped.data(), flipped.size()), "fails its CRC-32 check");
}

TEST_F(MRLErrors, FileThatIsNotAModel) {
    EXPECT_THROW_MESSAGE(MRLForce(model("not_a_model.pt")), "is not a TorchScript model");
    std::string garbage = "\x01\x02garbage";
    EXPECT_THROW_MESSAGE(MRLForce(garbage.data(), garbage.size()), "the model bytes is not a TorchScript model");
}

TEST_F(MRLErrors, ForwardSignatureDoesNotMatchInterface) {
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("wrong_signature.pt"))),
                         "forward takes 2 arguments, but a \"positions\" model and 0 global parameters is called as "
                         "forward(positions)");
    MRLForce* force = new MRLForce(model("pair_positions.pt"));
    force->addGlobalParameter("lambda", 1.0);
    EXPECT_THROW_MESSAGE(evaluate(force), "forward(positions, global_parameter_0)");
}

TEST_F(MRLErrors, WrongOutputShape) {
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("wrong_shape.pt"))), "energy has shape [5, 3]");
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("wrong_forces_shape.pt"))),
                         "forces has shape [1, 3]; it must be [5, 3]");
}

TEST_F(MRLErrors, WrongOutputDtype) {
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("integer_energy.pt"))),
                         "energy has dtype Long; it must be a floating-point tensor");
}

TEST_F(MRLErrors, NonFiniteEnergyOrForces) {
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("nan_energy.pt"))), "non-finite energy");
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("nan_forces.pt"))), "non-finite force on ML atom 0");
}

TEST_F(MRLErrors, ModelThatRaisesAnErrorReportsItWithoutBacktrace) {
    try {
        evaluate(new MRLForce(model("raises_error.pt")));
        ADD_FAILURE() << "no exception";
    } catch (const OpenMMException& e) {
        std::string message = e.what();
        EXPECT_NE(std::string::npos, message.find("the model's forward raised an error"));
        EXPECT_NE(std::string::npos, message.find("this model refuses to run"));
        EXPECT_EQ(std::string::npos, message.find("Exception raised from")) << message;
    }
}

TEST_F(MRLErrors, ParticleIndexOutOfRangeOrRepeated) {
    MRLForce force(model("pair_positions.pt"));
    EXPECT_THROW_MESSAGE(force.setParticles({0, 1, 1}), "contains the index 1 more than once");
    EXPECT_THROW_MESSAGE(force.setParticles({0, -2}), "negative index -2");
    MRLForce* outOfRange = new MRLForce(model("pair_positions.pt"));
    outOfRange->setParticles({0, 7});
    EXPECT_THROW_MESSAGE(evaluate(outOfRange), "particle index 7 is out of range; the System has 5 particles");
}

TEST_F(MRLErrors, ListsOfTheWrongLength) {
    MRLForce* atomic = new MRLForce(model("pair_graph.pt"));
    atomic->setAtomicNumbers({6, 6, 6});
    EXPECT_THROW_MESSAGE(evaluate(atomic), "3 atomic numbers were given but the ML region has 5 atoms");
    MRLForce* molecules = new MRLForce(model("pair_graph.pt"));
    molecules->setAtomicNumbers({6, 6, 6, 6, 6});
    molecules->setMoleculeIndices({0, 1});
    EXPECT_THROW_MESSAGE(evaluate(molecules), "2 molecule indices were given but the ML region has 5 atoms");
    EXPECT_THROW_MESSAGE(evaluate(new MRLForce(model("pair_graph.pt"))), "needs atomic numbers");
    MRLForce force(model("pair_graph.pt"));
    EXPECT_THROW_MESSAGE(force.setAtomicNumbers({6, 200}), "200 is not an atomic number");
}

TEST_F(MRLErrors, UnknownOrInvalidProperty) {
    MRLForce force(model("pair_positions.pt"));
    EXPECT_THROW_MESSAGE(force.setProperty("Threds", "2"), "unknown property 'Threds'. Known properties: Threads");
    EXPECT_THROW_MESSAGE(force.setProperty("Precision", "half"), "Precision must be");
    EXPECT_THROW_MESSAGE(force.setProperty("Threads", "two"), "Threads must be a non-negative integer");
    EXPECT_THROW_MESSAGE(force.setProperty("NeighborListSkin", "-1"), "NeighborListSkin must be");
    EXPECT_THROW_MESSAGE(force.setProperty("ReuseMemory", "yes"), "ReuseMemory must be");
    EXPECT_THROW_MESSAGE(force.setProperty("UseCUDAGraphs", "1"), "UseCUDAGraphs must be \"true\", \"false\"");
    EXPECT_THROW_MESSAGE(force.setProperty("CUDAGraphWarmupSteps", "1.5"),
                         "CUDAGraphWarmupSteps must be a non-negative integer");
    force.setProperty("UseCUDAGraphs", "true");
    force.setProperty("CUDAGraphWarmupSteps", "3");
    EXPECT_EQ(force.getProperties().at("CUDAGraphWarmupSteps"), "3");
}

TEST_F(MRLErrors, CutoffThatIsNotPositive) {
    EXPECT_THROW_MESSAGE(MRLForce(model("negative_cutoff.pt")), "it must be a positive distance in nm");
}

TEST_F(MRLErrors, UnknownInterface) {
    EXPECT_THROW_MESSAGE(MRLForce(model("unknown_interface.pt")), "mrl_interface = \"graph/7\"");
}

TEST_F(MRLErrors, BoxSmallerThanTwiceTheCutoff) {
    Vec3 box[3] = {Vec3(1.0, 0, 0), Vec3(0, 1.0, 0), Vec3(0, 0, 1.0)};
    MRLForce* force = new MRLForce(model("pair_graph.pt"));
    force->setAtomicNumbers({6, 6, 6, 6, 6});
    force->setUsesPeriodicBoundaryConditions(true);
    EXPECT_THROW_MESSAGE(evaluate(force, 5, box), "is smaller than twice the model's cutoff (0.600000 nm)");
}

TEST_F(MRLErrors, DerivativeOfAnUnknownParameter) {
    MRLForce* force = new MRLForce(model("pair_positions.pt"));
    force->addEnergyParameterDerivative("lambda");
    EXPECT_THROW_MESSAGE(evaluate(force), "'lambda', which is not a global parameter");
}

TEST_F(MRLErrors, ExplodedPositions) {
    std::unique_ptr<System> system(makeSystem(3));
    MRLForce* force = new MRLForce(model("pair_graph.pt"));
    force->setAtomicNumbers({6, 6, 6});
    system->addForce(force);
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(0, 0, 0), Vec3(NAN, 0, 0), Vec3(0.3, 0, 0)});
    EXPECT_THROW_MESSAGE(context.getState(State::Energy), "particle positions are not finite");
}

} // namespace
