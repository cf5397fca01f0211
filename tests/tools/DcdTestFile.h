#ifndef OPENMM_MRL_TESTS_DCD_TEST_FILE_H_
#define OPENMM_MRL_TESTS_DCD_TEST_FILE_H_

// SPDX-License-Identifier: MIT
// DCD files written byte by byte the way OpenMM's DCDFile writes them (openmm/app/dcdfile.py), for the
// tests of the DCD reader and of mrl-envgen carve.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "openmm/Vec3.h"

namespace MRLTest {

/// Binary writer for DCD records in either byte order.
class Binary {
public:
    Binary(const std::string& path, bool bigEndian) : out(path, std::ios::binary), swap(bigEndian) {}
    template <class T> void put(T value) {
        char bytes[sizeof(T)];
        std::memcpy(bytes, &value, sizeof(T));
        if (swap)
            std::reverse(bytes, bytes + sizeof(T));
        out.write(bytes, sizeof(T));
    }
    void raw(const char* bytes, size_t count) { out.write(bytes, static_cast<std::streamsize>(count)); }

private:
    std::ofstream out;
    bool swap;
};

/// A DCD unit cell record: A, cos gamma, B, cos beta, cos alpha, C (Angstrom; the angles as cosines, or in
/// degrees as some programs write them).
using DcdCell = std::array<double, 6>;

/// The CHARMM DCD that OpenMM's DCDFile writes: the header (frame k at step firstStep + k * interval, the time
/// step as a float in AKMA units), then per frame a unit cell record (when `cells` is not empty) and x, y, z as
/// float32 Angstrom.  `frames` in nm.
inline void writeDcdFile(const std::string& path, const std::vector<std::vector<OpenMM::Vec3>>& frames,
                         const std::vector<DcdCell>& cells, int32_t firstStep = 100, int32_t interval = 50,
                         double timestepPs = 0.002, bool bigEndian = false) {
    Binary out(path, bigEndian);
    int32_t n = frames.empty() ? 0 : static_cast<int32_t>(frames[0].size());
    bool unitCell = !cells.empty();
    float dt = static_cast<float>(timestepPs / 0.04888821);
    out.put<int32_t>(84);
    out.raw("CORD", 4);
    for (int32_t v : {static_cast<int32_t>(frames.size()), firstStep, interval, 0, 0, 0, 0, 0, 0})
        out.put<int32_t>(v);
    out.put<float>(dt);
    for (int32_t v : {unitCell ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 84, 164, 2})
        out.put<int32_t>(v);
    char title[160] = {};
    std::snprintf(title, 80, "Created by OpenMM");
    std::snprintf(title + 80, 80, "Created by the mrl-envgen tests");
    out.raw(title, 160);
    for (int32_t v : {164, 4, n, 4})
        out.put<int32_t>(v);
    for (size_t f = 0; f < frames.size(); f++) {
        if (unitCell) {
            out.put<int32_t>(48);
            for (double v : cells[f])
                out.put<double>(v);
            out.put<int32_t>(48);
        }
        for (int k = 0; k < 3; k++) {
            out.put<int32_t>(4 * n);
            for (int32_t i = 0; i < n; i++)
                out.put<float>(static_cast<float>(10.0 * frames[f][i][k]));
            out.put<int32_t>(4 * n);
        }
    }
}

} // namespace MRLTest

#endif
