#ifndef OPENMM_MRL_TEXT_H_
#define OPENMM_MRL_TEXT_H_

// SPDX-License-Identifier: MIT
// Small string helpers shared by the tools' readers and commands.

#include <string>

namespace MRLPlugin {

/// `text` without the leading and trailing characters that are in `whitespace`.
std::string trim(const std::string& text, const char* whitespace = " \t\r\n");

/// The message for a file that cannot be opened: what it is (e.g. "--system file"), its path, the
/// system's reason (strerror(errno), so call it right after the failed open) and the fix.
std::string openError(const std::string& what, const std::string& path);

} // namespace MRLPlugin

#endif
