// SPDX-License-Identifier: MIT
#ifndef OPENMM_REFERENCE_MRL_KERNEL_FACTORY_H_
#define OPENMM_REFERENCE_MRL_KERNEL_FACTORY_H_

#include "openmm/KernelFactory.h"

namespace MRLPlugin {

/** Creates the MRLForce kernel for the Reference and CPU platforms. */
class ReferenceMRLKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

} // namespace MRLPlugin

#endif // OPENMM_REFERENCE_MRL_KERNEL_FACTORY_H_
