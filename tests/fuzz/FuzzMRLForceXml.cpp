// SPDX-License-Identifier: MIT
// Fuzz target: MRLForce's XML deserializer, through OpenMM's XmlSerializer as a user's System XML reaches it
// (an embedded base64 model included), then the deserialized force in a Reference Context of up to 64 particles:
// the model is loaded, checked against the force's settings and evaluated.  OpenMM 8.6's XML parser (irrXML) reads
// past the end of malformed XML, so the input goes to OpenMM only when MRLPlugin::findXmlStructureError (the check
// that mrl-envgen's readers make, fuzzed here too) passes it: this target fuzzes what this project owns.
#include "FuzzUtilities.h"
#include "MRLForce.h"
#include "MRLReaders.h"
#include "openmm/OpenMMException.h"
#include "openmm/serialization/XmlSerializer.h"
#include <algorithm>
#include <memory>
#include <sstream>

using namespace OpenMM;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    if (!MRLPlugin::findXmlStructureError(text).empty())
        return 0;
    std::istringstream in(text);
    try {
        std::unique_ptr<Force> force(XmlSerializer::deserialize<Force>(in));
        auto* mrl = dynamic_cast<MRLPlugin::MRLForce*>(force.get());
        if (mrl == nullptr)
            return 0; // another force type: OpenMM's own proxies, not this project's
        size_t particles = std::max(
            {mrl->getParticles().size(), mrl->getAtomicNumbers().size(), mrl->getMoleculeIndices().size(), size_t(1)});
        for (int p : mrl->getParticles())
            particles = std::max(particles, static_cast<size_t>(std::max(p, 0)) + 1);
        if (particles <= 64)
            MRLFuzz::evaluateInContext(force.release(), static_cast<int>(particles));
    } catch (const OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    return 0;
}
