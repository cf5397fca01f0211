// SPDX-License-Identifier: MIT
#include "MRLText.h"

#include <cerrno>
#include <cstring>

namespace MRLPlugin {

std::string trim(const std::string& text, const char* whitespace) {
    size_t begin = text.find_first_not_of(whitespace);
    if (begin == std::string::npos)
        return "";
    size_t end = text.find_last_not_of(whitespace);
    return text.substr(begin, end - begin + 1);
}

std::string openError(const std::string& what, const std::string& path) {
    return "cannot open the " + what + " \"" + path + "\": " + std::strerror(errno) + "; check the path";
}

} // namespace MRLPlugin
