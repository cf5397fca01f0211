// SPDX-License-Identifier: MIT
// Shared by the fuzz targets (tests/fuzz/Fuzz*.cpp): each defines LLVMFuzzerTestOneInput, is built with libFuzzer's
// main under scripts/fuzz.sh (clang) and with FuzzRegressionMain.cpp as an ordinary CTest test (seeds and every
// input that once crashed), and accepts only OpenMMException as the outcome of bad input: any other exception,
// a crash, a sanitizer report, a hang or an oversized allocation is a finding.
#ifndef MRL_FUZZ_UTILITIES_H_
#define MRL_FUZZ_UTILITIES_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <unistd.h>

namespace OpenMM {
class Force;
}

namespace MRLFuzz {

/// Adds `force` (taking ownership) to a System of `particles` particles (12 Da, a 2 nm periodic box), creates a
/// Reference Context and evaluates energy and forces at fixed positions (a 4x4 grid of layers, 0.13-0.19 nm apart).
void evaluateInContext(OpenMM::Force* force, int particles);

/// A clear error: the expected outcome of a damaged input.  MRL_FUZZ_VERBOSE=1 prints it (to see which seeds
/// reach how far).
inline void rejected(const std::exception& error) {
    if (std::getenv("MRL_FUZZ_VERBOSE") != nullptr)
        std::fprintf(stderr, "  rejected: %s\n", error.what());
}

/// The input as a file (the readers take paths), removed when this goes out of scope.
class InputFile {
public:
    InputFile(const uint8_t* data, size_t size, const char* suffix) {
        const char* shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        path = std::string(shm) + "/mrl-fuzz-" + std::to_string(getpid()) + suffix;
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    ~InputFile() { std::remove(path.c_str()); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    const std::string& getPath() const { return path; }

private:
    std::string path;
};

} // namespace MRLFuzz

#endif
