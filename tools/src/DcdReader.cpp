// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "MRLReaders.h"
#include "MRLText.h"

using OpenMM::OpenMMException;
using OpenMM::Vec3;

namespace MRLPlugin {

namespace {

const double AKMA_PS = 0.04888821; // the AKMA time unit

/// The time step was stored as a float in AKMA units: 7 significant digits give back 0.002, not 0.0020000000067.
double roundToFloatPrecision(double value) {
    if (!(value > 0) || !std::isfinite(value))
        return value;
    double scale = std::pow(10.0, 6 - static_cast<int>(std::floor(std::log10(value))));
    return std::round(value * scale) / scale;
}

int32_t byteSwap(int32_t value) {
    uint32_t v = static_cast<uint32_t>(value);
    return static_cast<int32_t>((v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24));
}

} // namespace

void boxFromLengthsAndCosines(double a, double b, double c, double cosAlpha, double cosBeta, double cosGamma,
                              Vec3* box) {
    double sinGamma = std::sqrt(std::max(0.0, 1.0 - cosGamma * cosGamma));
    Vec3 va(a, 0, 0), vb(b * cosGamma, b * sinGamma, 0);
    double cx = c * cosBeta, cy = c * (cosAlpha - cosBeta * cosGamma) / sinGamma;
    Vec3 vc(cx, cy, std::sqrt(std::max(0.0, c * c - cx * cx - cy * cy)));
    for (Vec3* v : {&va, &vb, &vc})
        for (int i = 0; i < 3; i++)
            if (std::abs((*v)[i]) < 1e-6)
                (*v)[i] = 0.0;
    vc = vc - vb * std::round(vc[1] / vb[1]);
    vc = vc - va * std::round(vc[0] / va[0]);
    vb = vb - va * std::round(vb[0] / va[0]);
    box[0] = va;
    box[1] = vb;
    box[2] = vc;
}

DcdReader::DcdReader(const std::string& path, const std::string& label)
    : path(path), label(label), in(path, std::ios::binary) {
    if (!in)
        throw OpenMMException(openError(label + " DCD file", path));
    in.seekg(0, std::ios::end);
    long long fileSize = in.tellg();
    in.seekg(0);
    unsigned char first[4];
    if (!in.read(reinterpret_cast<char*>(first), 4))
        throw corrupt("the file is shorter than a DCD header");
    int32_t marker;
    std::memcpy(&marker, first, 4);
    if (marker == 84)
        swap = false;
    else if (byteSwap(marker) == 84)
        swap = true;
    else
        throw corrupt("it does not start with a DCD header (record of 84 bytes); it is not a DCD file, or one "
                      "with 64-bit record markers, which is not supported");
    char header[84] = {};
    in.read(header, 84);
    if (!in || std::strncmp(header, "CORD", 4) != 0)
        throw corrupt(std::strncmp(header, "VELD", 4) == 0 ? "it holds velocities, not coordinates"
                                                           : "its header lacks the CORD signature");
    readHeader(header);
    readTitleAndAtomCount();
    headerSize = in.tellg();
    frameSize = (hasCell ? 8 + 48 : 0) + 3 * (8 + 4LL * numAtoms);
    numFrames = static_cast<int>((fileSize - headerSize) / frameSize);
    incompleteBytes = (fileSize - headerSize) % frameSize;
    // DCDReporter counts a frame in the header after writing it: fewer complete frames than that count means
    // the file was cut short (an interrupted copy or download), not that a simulation is still writing it.
    if (headerFrames > numFrames)
        throw corrupt("its header counts " + std::to_string(headerFrames) + " frames but the file holds only " +
                      std::to_string(numFrames) + " complete ones (" + std::to_string(fileSize) +
                      " bytes); it was cut short: copy the whole file again");
}

/// The 84-byte header record after its CORD signature: the frame numbering, the time step, the unit cell flag.
void DcdReader::readHeader(const char* header) {
    int32_t control[20];
    for (int i = 0; i < 20; i++)
        control[i] = integer(header + 4 + 4 * i);
    expectMarker(84, "header");
    int32_t istart = control[1], nsavc = control[2], nfixed = control[8], version = control[19];
    headerFrames = control[0];
    double delta;
    if (version != 0) { // CHARMM: a float time step, a unit cell flag
        float d;
        std::memcpy(&d, header + 4 + 36, 4);
        if (swap) {
            int32_t bits;
            std::memcpy(&bits, &d, 4);
            bits = byteSwap(bits);
            std::memcpy(&d, &bits, 4);
        }
        delta = d;
        hasCell = control[10] != 0;
        if (control[11] != 0)
            throw corrupt("it has a fourth dimension, which is not supported");
    } else { // X-PLOR: a double time step, no unit cell
        char bytes[8];
        std::memcpy(bytes, header + 4 + 36, 8);
        if (swap)
            std::reverse(bytes, bytes + 8);
        std::memcpy(&delta, bytes, 8);
        hasCell = false;
    }
    if (nfixed != 0)
        throw corrupt("it has fixed atoms (" + std::to_string(nfixed) + "), which are not supported");
    timestepPs = roundToFloatPrecision(delta * AKMA_PS);
    firstStep = istart;
    interval = nsavc;
}

void DcdReader::readTitleAndAtomCount() {
    int32_t titleSize = readMarker("title");
    if (titleSize < 0 || titleSize > 1 << 20)
        throw corrupt("its title record is malformed");
    in.seekg(titleSize, std::ios::cur);
    expectMarker(titleSize, "title");
    expectMarker(4, "atom count");
    char count[4];
    in.read(count, 4);
    numAtoms = integer(count);
    expectMarker(4, "atom count");
    if (!in)
        throw corrupt("its header is truncated");
    if (numAtoms < 0)
        throw corrupt("its atom count (" + std::to_string(numAtoms) + ") is negative");
}

void DcdReader::read(int frame, TrajectoryFrame& out) {
    in.clear();
    in.seekg(headerSize + frame * frameSize);
    out.hasBox = false;
    if (hasCell)
        readUnitCell(frame, out);
    out.positions.resize(numAtoms);
    buffer.resize(numAtoms); // here, not from the header alone: a complete frame of this size is in the file
    for (int axis = 0; axis < 3; axis++) {
        expectMarker(4 * numAtoms, "coordinates", frame);
        in.read(reinterpret_cast<char*>(buffer.data()), 4LL * numAtoms);
        expectMarker(4 * numAtoms, "coordinates", frame);
        for (int i = 0; i < numAtoms; i++) {
            int32_t bits;
            std::memcpy(&bits, &buffer[i], 4);
            if (swap)
                bits = byteSwap(bits);
            float value;
            std::memcpy(&value, &bits, 4);
            out.positions[i][axis] = static_cast<double>(value) / 10.0;
        }
    }
    // OpenMM's DCDReporter: frame k was written at step firstStep + k * interval.
    out.timePs = interval > 0 && timestepPs > 0
                     ? (static_cast<double>(firstStep) + static_cast<double>(frame) * interval) * timestepPs
                     : std::numeric_limits<double>::quiet_NaN();
}

void DcdReader::readUnitCell(int frame, TrajectoryFrame& out) {
    expectMarker(48, "unit cell", frame);
    double cell[6];
    char bytes[48];
    in.read(bytes, 48);
    for (int i = 0; i < 6; i++) {
        if (swap)
            std::reverse(bytes + 8 * i, bytes + 8 * i + 8);
        std::memcpy(&cell[i], bytes + 8 * i, 8);
    }
    expectMarker(48, "unit cell", frame);
    // A, gamma, B, beta, alpha, C: cosines (CHARMM, OpenMM) or degrees (older NAMD).
    double angles[3] = {cell[4], cell[3], cell[1]}; // alpha, beta, gamma
    bool cosines = std::abs(angles[0]) <= 1.0 && std::abs(angles[1]) <= 1.0 && std::abs(angles[2]) <= 1.0;
    for (double& angle : angles)
        if (!cosines)
            angle = std::cos(angle * M_PI / 180.0);
    if (cell[0] > 0 && cell[2] > 0 && cell[5] > 0) {
        boxFromLengthsAndCosines(cell[0] / 10.0, cell[2] / 10.0, cell[5] / 10.0, angles[0], angles[1], angles[2],
                                 out.box);
        out.hasBox = true;
    }
}

int32_t DcdReader::integer(const char* bytes) const {
    int32_t value;
    std::memcpy(&value, bytes, 4);
    return swap ? byteSwap(value) : value;
}

OpenMMException DcdReader::corrupt(const std::string& why, int frame) const {
    return OpenMMException(label + " " + path + ": " + why +
                           (frame >= 0 ? " (frame " + std::to_string(frame) + ")" : "") +
                           "; give a DCD file as written by OpenMM's DCDReporter");
}

int32_t DcdReader::readMarker(const char* what, int frame) {
    char bytes[4];
    if (!in.read(bytes, 4))
        throw corrupt(std::string("truncated at the ") + what + " record", frame);
    return integer(bytes);
}

void DcdReader::expectMarker(int32_t expected, const char* what, int frame) {
    int32_t marker = readMarker(what, frame);
    if (marker != expected)
        throw corrupt(std::string("the ") + what + " record has length " + std::to_string(marker) + " instead of " +
                          std::to_string(expected),
                      frame);
}

} // namespace MRLPlugin
