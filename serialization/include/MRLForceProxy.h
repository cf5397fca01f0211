// SPDX-License-Identifier: MIT
#ifndef OPENMM_MRLFORCE_PROXY_H_
#define OPENMM_MRLFORCE_PROXY_H_

#include "internal/windowsExportMRL.h"
#include "openmm/serialization/SerializationProxy.h"
#include <string>

namespace MRLPlugin {

/**
 * The XML serialization proxy of MRLForce.  It stores every setting and the model itself (base64), so
 * a serialized System runs without the original model file.  Version 1.
 */
class OPENMM_EXPORT_MRL MRLForceProxy : public OpenMM::SerializationProxy {
public:
    MRLForceProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

/** Encode bytes as base64 (RFC 4648, with padding). */
OPENMM_EXPORT_MRL std::string encodeBase64(const std::string& bytes);
/** Decode base64; throws an OpenMMException on characters outside the alphabet. */
OPENMM_EXPORT_MRL std::string decodeBase64(const std::string& text);

} // namespace MRLPlugin

#endif // OPENMM_MRLFORCE_PROXY_H_
