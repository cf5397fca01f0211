// SPDX-License-Identifier: MIT
#include "MRLForce.h"
#include "MRLForceProxy.h"
#include "openmm/serialization/SerializationProxy.h"

using namespace MRLPlugin;
using namespace OpenMM;

extern "C" OPENMM_EXPORT_MRL void registerMRLSerializationProxies() {
    SerializationProxy::registerProxy(typeid(MRLForce), new MRLForceProxy());
}

// Register the proxy when the library is loaded, so XmlSerializer knows MRLForce in C++ and Python.
namespace {
struct Registration {
    Registration() { registerMRLSerializationProxies(); }
} registration;
} // namespace
