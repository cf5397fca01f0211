#ifndef OPENMM_MRL_ARCHIVE_H_
#define OPENMM_MRL_ARCHIVE_H_
// SPDX-License-Identifier: MIT
// Checks a model file's zip archive (TorchScript files, and .pt2 packages, are zip archives) before LibTorch
// reads it: LibTorch's reader trusts the sizes inside the archive (an unpickled length of gigabytes is
// allocated as it stands) and does not check members' CRC-32, so damaged bytes would reach it unchecked.
#include <string>
#include <vector>

namespace MRLPlugin {

/// Throws OpenMMException, naming `source` and the problem, unless `bytes` is a complete zip archive (not zip64)
/// whose every member lies inside it, has a name, is stored or deflated (as torch.jit.save writes them) and, once
/// inflated to exactly its stated size, matches its CRC-32.  Returns the members' names, in the directory's order.
std::vector<std::string> checkModelArchive(const std::string& bytes, const std::string& source);

} // namespace MRLPlugin

#endif
