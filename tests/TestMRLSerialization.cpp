// SPDX-License-Identifier: MIT
// A System with an MRLForce round-trips through XmlSerializer with every setting and the model itself.
#include "MRLForceProxy.h"
#include "MRLTestUtilities.h"
#include "openmm/State.h"
#include "openmm/serialization/XmlSerializer.h"
#include <memory>
#include <sstream>

using namespace MRLPlugin;
using namespace MRLTest;
using namespace OpenMM;

namespace {

TEST(MRLSerialization, Base64RoundTripsEveryByteValue) {
    std::string bytes;
    for (int i = 0; i < 256; i++)
        bytes += static_cast<char>(i);
    for (size_t length : {0, 1, 2, 3, 4, 255, 256}) {
        std::string part = bytes.substr(0, length);
        EXPECT_EQ(part, decodeBase64(encodeBase64(part)));
    }
    EXPECT_EQ("TWFu", encodeBase64("Man"));
    EXPECT_EQ("TWE=", encodeBase64("Ma"));
    EXPECT_THROW_MESSAGE(decodeBase64("TW*u"), "not valid base64");
}

TEST(MRLSerialization, SystemRoundTripGivesTheSameEnergyAndForces) {
    loadPlatforms();
    int n = 25;
    Vec3 box[3] = {Vec3(1.5, 0, 0), Vec3(0.3, 1.5, 0), Vec3(-0.2, 0.4, 1.6)};
    std::unique_ptr<System> system(makeSystem(n, box));
    MRLForce* force = new MRLForce(model("pair_graph.pt"));
    std::vector<int> particles, z, molecules;
    for (int i = 0; i < 20; i++) {
        particles.push_back(i + 5);
        z.push_back(i % 2 ? 6 : 8);
        molecules.push_back(i / 4);
    }
    force->setParticles(particles);
    force->setAtomicNumbers(z);
    force->setMoleculeIndices(molecules);
    force->setUsesPeriodicBoundaryConditions(true);
    force->setForceGroup(2);
    force->setName("ML head");
    force->setProperty("NeighborListSkin", "0.03");
    force->setProperty("Precision", "double");
    system->addForce(force);
    std::stringstream buffer;
    XmlSerializer::serialize<System>(system.get(), "System", buffer);
    std::unique_ptr<System> copy(XmlSerializer::deserialize<System>(buffer));
    const MRLForce& restored = dynamic_cast<const MRLForce&>(copy->getForce(0));
    EXPECT_EQ(force->getModelBytes(), restored.getModelBytes());
    EXPECT_EQ("graph/1", restored.getInterface());
    EXPECT_EQ(force->getCutoff(), restored.getCutoff());
    EXPECT_EQ(particles, restored.getParticles());
    EXPECT_EQ(z, restored.getAtomicNumbers());
    EXPECT_EQ(molecules, restored.getMoleculeIndices());
    EXPECT_TRUE(restored.usesPeriodicBoundaryConditions());
    EXPECT_EQ(2, restored.getForceGroup());
    EXPECT_EQ("ML head", restored.getName());
    EXPECT_EQ(force->getProperties(), restored.getProperties());
    std::vector<Vec3> positions = randomPositions(n, 1.5, 3);
    std::vector<State> states;
    for (System* s : {system.get(), copy.get()}) {
        VerletIntegrator integrator(0.001);
        Context context(*s, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions(positions);
        states.push_back(context.getState(State::Energy | State::Forces));
    }
    EXPECT_GT(states[0].getPotentialEnergy(), 1.0);
    EXPECT_EQ(states[0].getPotentialEnergy(), states[1].getPotentialEnergy());
    for (int i = 0; i < n; i++)
        EXPECT_EQ(states[0].getForces()[i], states[1].getForces()[i]);
}

TEST(MRLSerialization, GlobalParametersAndDerivativesRoundTrip) {
    MRLForce force(model("scaled_pair.pt"));
    force.addGlobalParameter("scale", 0.25);
    force.addGlobalParameter("shift", -3.0);
    force.addEnergyParameterDerivative("scale");
    std::stringstream buffer;
    XmlSerializer::serialize<MRLForce>(&force, "Force", buffer);
    std::unique_ptr<MRLForce> copy(XmlSerializer::deserialize<MRLForce>(buffer));
    ASSERT_EQ(2, copy->getNumGlobalParameters());
    EXPECT_EQ("shift", copy->getGlobalParameterName(1));
    EXPECT_EQ(-3.0, copy->getGlobalParameterDefaultValue(1));
    ASSERT_EQ(1, copy->getNumEnergyParameterDerivatives());
    EXPECT_EQ("scale", copy->getEnergyParameterDerivativeName(0));
}

TEST(MRLSerialization, NewerVersionIsRejectedClearly) {
    MRLForce force(model("pair_positions.pt"));
    std::stringstream buffer;
    XmlSerializer::serialize<MRLForce>(&force, "Force", buffer);
    std::string xml = buffer.str();
    size_t at = xml.find("version=\"1\"");
    ASSERT_NE(std::string::npos, at);
    xml.replace(at, 11, "version=\"9\"");
    std::stringstream modified(xml);
    EXPECT_THROW_MESSAGE(XmlSerializer::deserialize<MRLForce>(modified), "unsupported serialization version 9");
}

} // namespace
