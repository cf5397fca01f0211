// SPDX-License-Identifier: MIT
#ifndef COMMON_MRL_SHARED_ARRAY_H_
#define COMMON_MRL_SHARED_ARRAY_H_

#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeKernel.h"
#include <torch/script.h>

namespace MRLPlugin {

/**
 * An array that the model reads or writes.  On the host path it is a ComputeArray with a CPU tensor to stage
 * it; on the device path it is a tensor on the model's device, which the kernels get as a raw pointer (the
 * ComputeArray is not allocated).
 */
struct CommonMRLSharedArray {
    OpenMM::ComputeArray array;
    torch::Tensor tensor;
    /** Add the array as the next argument of a kernel: the ComputeArray, or else the tensor's device pointer. */
    void addArgTo(OpenMM::ComputeKernel& kernel) {
        if (array.isInitialized())
            kernel->addArg(array);
        else
            kernel->addArg(tensor.data_ptr());
    }
};

} // namespace MRLPlugin

#endif // COMMON_MRL_SHARED_ARRAY_H_
