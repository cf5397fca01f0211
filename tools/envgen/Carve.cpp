// SPDX-License-Identifier: MIT
// mrl-envgen carve: interaction environments cut out of the user's own OpenMM simulation.  The user's
// System (XML), a PDB with the same atoms in the same order, and frames (a DCD trajectory or State XML
// files) give, for every central molecule and frame, one record: the molecules within a radius of the
// central molecule, made whole, with the total and interaction forces of the whole simulated System.
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "Cli.h"
#include "Commands.h"
#include "MRLDataset.h"
#include "openmm/Context.h"
#include "openmm/CustomBondForce.h"
#include "openmm/HarmonicBondForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/VirtualSite.h"
#include "openmm/serialization/XmlSerializer.h"

using OpenMM::OpenMMException;
using OpenMM::Vec3;

namespace MRLPlugin {

namespace {

// ---- elements -------------------------------------------------------------------------------------

const char* const ELEMENT_SYMBOLS[] = {
    "X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",
    "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho",
    "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po",
    "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md",
    "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
const int NUM_ELEMENTS = static_cast<int>(sizeof(ELEMENT_SYMBOLS) / sizeof(ELEMENT_SYMBOLS[0]));

// Standard atomic weights (Da), index = atomic number; for elements without one, the mass number of
// the longest-lived isotope.
const double ELEMENT_MASSES[] = {
    0.0,    1.008,  4.0026, 6.94,   9.0122, 10.81,  12.011, 14.007, 15.999, 18.998, 20.180, 22.990, 24.305, 26.982,
    28.085, 30.974, 32.06,  35.45,  39.948, 39.098, 40.078, 44.956, 47.867, 50.942, 51.996, 54.938, 55.845, 58.933,
    58.693, 63.546, 65.38,  69.723, 72.630, 74.922, 78.971, 79.904, 83.798, 85.468, 87.62,  88.906, 91.224, 92.906,
    95.95,  97.0,   101.07, 102.91, 106.42, 107.87, 112.41, 114.82, 118.71, 121.76, 127.60, 126.90, 131.29, 132.91,
    137.33, 138.91, 140.12, 140.91, 144.24, 145.0,  150.36, 151.96, 157.25, 158.93, 162.50, 164.93, 167.26, 168.93,
    173.05, 174.97, 178.49, 180.95, 183.84, 186.21, 190.23, 192.22, 195.08, 196.97, 200.59, 204.38, 207.2,  208.98,
    209.0,  210.0,  222.0,  223.0,  226.0,  227.0,  232.04, 231.04, 238.03, 237.0,  244.0,  243.0,  247.0,  247.0,
    251.0,  252.0,  257.0,  258.0,  259.0,  262.0,  267.0,  268.0,  269.0,  270.0,  269.0,  278.0,  281.0,  282.0,
    285.0,  286.0,  289.0,  290.0,  293.0,  294.0,  294.0};
static_assert(sizeof(ELEMENT_MASSES) / sizeof(ELEMENT_MASSES[0]) ==
                  sizeof(ELEMENT_SYMBOLS) / sizeof(ELEMENT_SYMBOLS[0]),
              "one mass per element");

/// The atomic number of an element symbol (any case), or -1.
int elementFromSymbol(const std::string& symbol) {
    if (symbol.empty() || symbol.size() > 2)
        return -1;
    std::string normal(1, static_cast<char>(std::toupper(static_cast<unsigned char>(symbol[0]))));
    if (symbol.size() == 2)
        normal += static_cast<char>(std::tolower(static_cast<unsigned char>(symbol[1])));
    for (int z = 1; z < NUM_ELEMENTS; z++)
        if (normal == ELEMENT_SYMBOLS[z])
            return z;
    return -1;
}

/// The element whose standard mass is nearest; 0 (a dummy) for massless particles (virtual sites).
int elementFromMass(double mass) {
    if (mass < 0.5)
        return 0;
    int best = 1;
    for (int z = 2; z < NUM_ELEMENTS; z++)
        if (std::abs(ELEMENT_MASSES[z] - mass) < std::abs(ELEMENT_MASSES[best] - mass))
            best = z;
    return best;
}

// ---- small helpers ------------------------------------------------------------------------------

std::string trim(const std::string& text) {
    size_t begin = text.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos)
        return "";
    size_t end = text.find_last_not_of(" \t\r\n");
    return text.substr(begin, end - begin + 1);
}

std::string columns(const std::string& line, size_t first, size_t count) {
    return first < line.size() ? line.substr(first, count) : "";
}

std::string openError(const std::string& what, const std::string& path) {
    return "cannot open the " + what + " \"" + path + "\": " + std::strerror(errno) + "; check the path";
}

/// "0-20,25" -> sorted unique indices; throws UsageError.
std::vector<int> parseAtomList(const std::string& text, int numParticles) {
    auto fail = [&](const std::string& why) -> UsageError {
        return UsageError("--central-atoms \"" + text + "\": " + why +
                          "; give zero-based particle indices and inclusive ranges, e.g. 0-20,25");
    };
    std::set<int> atoms;
    std::stringstream stream(text);
    std::string item;
    auto number = [&](const std::string& part) {
        std::string t = trim(part);
        char* end = nullptr;
        errno = 0;
        long long value = std::strtoll(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || errno != 0 || value < 0)
            throw fail("\"" + t + "\" is not a non-negative integer");
        if (value >= numParticles)
            throw fail("index " + t + " is out of range: the System has " + std::to_string(numParticles) +
                       " particles (0-" + std::to_string(numParticles - 1) + ")");
        return static_cast<int>(value);
    };
    while (std::getline(stream, item, ',')) {
        if (trim(item).empty())
            throw fail("empty item");
        size_t dash = item.find('-', item.find_first_not_of(' '));
        if (dash == std::string::npos)
            atoms.insert(number(item));
        else {
            int first = number(item.substr(0, dash)), last = number(item.substr(dash + 1));
            if (last < first)
                throw fail("range " + trim(item) + " runs backwards");
            for (int i = first; i <= last; i++)
                atoms.insert(i);
        }
    }
    if (atoms.empty())
        throw fail("no atoms");
    return std::vector<int>(atoms.begin(), atoms.end());
}

std::vector<int> parseGroups(const std::string& text) {
    std::set<int> groups;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        std::string t = trim(item);
        char* end = nullptr;
        long value = std::strtol(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || value < 0 || value > 31)
            throw UsageError("--interaction-groups \"" + text +
                             "\": give force group numbers 0-31 separated by commas, e.g. 1 or 1,2");
        groups.insert(static_cast<int>(value));
    }
    if (groups.empty())
        throw UsageError("--interaction-groups is empty; give force group numbers, e.g. 1 or 1,2");
    return std::vector<int>(groups.begin(), groups.end());
}

// ---- the PDB ------------------------------------------------------------------------------------

struct PdbAtom {
    std::string name, residueName;
    int residue = 0;  ///< index of its residue (consecutive atoms with the same chain, number, name)
    int element = -1; ///< -1 when the element column is blank or unknown
};

std::vector<PdbAtom> readPdb(const std::string& path, int& numResidues) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException(openError("--topology PDB file", path));
    std::vector<PdbAtom> atoms;
    std::string line, lastResidueId;
    bool newResidue = true;
    numResidues = 0;
    int lineNumber = 0;
    while (std::getline(in, line)) {
        lineNumber++;
        std::string record = columns(line, 0, 6);
        if (record.compare(0, 6, "ENDMDL") == 0)
            break; // only the first model
        if (record.compare(0, 3, "TER") == 0) {
            newResidue = true;
            continue;
        }
        if (record != "ATOM  " && record != "HETATM")
            continue;
        if (line.size() < 27)
            throw OpenMMException("--topology " + path + " line " + std::to_string(lineNumber) +
                                  ": an ATOM/HETATM line shorter than 27 columns; write the PDB with a standard "
                                  "writer (e.g. OpenMM's PDBFile)");
        PdbAtom atom;
        atom.name = trim(columns(line, 12, 4));
        atom.residueName = trim(columns(line, 17, 4));
        // chain (22), residue number (23-26), insertion code (27), residue name (18-21)
        std::string residueId = columns(line, 21, 6) + "|" + atom.residueName;
        if (newResidue || residueId != lastResidueId)
            numResidues++;
        newResidue = false;
        lastResidueId = residueId;
        atom.residue = numResidues - 1;
        std::string symbol = trim(columns(line, 76, 2));
        atom.element = symbol.empty() ? -1 : elementFromSymbol(symbol);
        atoms.push_back(atom);
    }
    if (atoms.empty())
        throw OpenMMException("--topology " + path +
                              " has no ATOM or HETATM records; give a PDB of the simulated System");
    return atoms;
}

// ---- frames: DCD and State XML ------------------------------------------------------------------

struct Frame {
    std::vector<Vec3> positions; ///< nm
    bool hasBox = false;
    Vec3 box[3]; ///< nm, OpenMM's reduced form
    double timePs = 0.0;
};

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

/// A DCD file (CHARMM or X-PLOR flavour, either byte order, 32-bit record markers), as written by
/// OpenMM's DCDReporter: a unit cell record per frame (A, cos gamma, B, cos beta, cos alpha, C in
/// Angstrom; angles given in degrees by some other programs are recognized), then x, y, z in Angstrom.
class DcdReader {
public:
    DcdReader(const std::string& path, int expectedAtoms) : path(path), in(path, std::ios::binary) {
        if (!in)
            throw OpenMMException(openError("--trajectory DCD file", path));
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
        char header[84];
        in.read(header, 84);
        if (!in || std::strncmp(header, "CORD", 4) != 0)
            throw corrupt(std::strncmp(header, "VELD", 4) == 0 ? "it holds velocities, not coordinates"
                                                               : "its header lacks the CORD signature");
        int32_t control[20];
        for (int i = 0; i < 20; i++)
            control[i] = integer(header + 4 + 4 * i);
        expectMarker(84, "header");
        int32_t istart = control[1], nsavc = control[2], nfixed = control[8], version = control[19];
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
        if (numAtoms != expectedAtoms)
            throw OpenMMException("--trajectory " + path + " has " + std::to_string(numAtoms) +
                                  " atoms per frame but the System has " + std::to_string(expectedAtoms) +
                                  " particles; give the trajectory of this System with every particle (forces need all "
                                  "of them: a DCDReporter with atomSubset cannot be carved)");
        headerSize = in.tellg();
        frameSize = (hasCell ? 8 + 48 : 0) + 3 * (8 + 4LL * numAtoms);
        numFrames = static_cast<int>((fileSize - headerSize) / frameSize);
        long long extra = (fileSize - headerSize) % frameSize;
        if (extra != 0)
            std::cerr << "mrl-envgen carve: warning: " << path << " ends with an incomplete frame (" << extra
                      << " bytes, e.g. a simulation still running or killed); it is ignored\n";
        timestepPs = roundToFloatPrecision(delta * AKMA_PS);
        firstStep = istart;
        interval = nsavc;
        buffer.resize(numAtoms);
    }

    int getNumFrames() const { return numFrames; }
    bool hasUnitCell() const { return hasCell; }
    double getTimestepPs() const { return timestepPs; }

    void read(int frame, Frame& out) {
        in.clear();
        in.seekg(headerSize + frame * frameSize);
        out.hasBox = false;
        if (hasCell) {
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
                boxFromLengthsAndCosines(cell[0] / 10.0, cell[2] / 10.0, cell[5] / 10.0, angles[0], angles[1],
                                         angles[2], out.box);
                out.hasBox = true;
            }
        }
        out.positions.resize(numAtoms);
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

private:
    static constexpr double AKMA_PS = 0.04888821; // the AKMA time unit
    /// The time step was stored as a float in AKMA units: 7 significant digits give back 0.002, not 0.0020000000067.
    static double roundToFloatPrecision(double value) {
        if (!(value > 0) || !std::isfinite(value))
            return value;
        double scale = std::pow(10.0, 6 - static_cast<int>(std::floor(std::log10(value))));
        return std::round(value * scale) / scale;
    }
    static int32_t byteSwap(int32_t value) {
        uint32_t v = static_cast<uint32_t>(value);
        return static_cast<int32_t>((v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24));
    }
    int32_t integer(const char* bytes) const {
        int32_t value;
        std::memcpy(&value, bytes, 4);
        return swap ? byteSwap(value) : value;
    }
    OpenMMException corrupt(const std::string& why, int frame = -1) const {
        return OpenMMException("--trajectory " + path + ": " + why +
                               (frame >= 0 ? " (frame " + std::to_string(frame) + ")" : "") +
                               "; give a DCD file as written by OpenMM's DCDReporter");
    }
    int32_t readMarker(const char* what, int frame = -1) {
        char bytes[4];
        if (!in.read(bytes, 4))
            throw corrupt(std::string("truncated at the ") + what + " record", frame);
        return integer(bytes);
    }
    void expectMarker(int32_t expected, const char* what, int frame = -1) {
        int32_t marker = readMarker(what, frame);
        if (marker != expected)
            throw corrupt(std::string("the ") + what + " record has length " + std::to_string(marker) + " instead of " +
                              std::to_string(expected),
                          frame);
    }

    std::string path;
    std::ifstream in;
    bool swap = false, hasCell = false;
    int numAtoms = 0, numFrames = 0, firstStep = 0, interval = 1;
    long long headerSize = 0, frameSize = 0;
    double timestepPs = 0.0;
    std::vector<float> buffer;
};

Frame readStateFile(const std::string& path, int numParticles) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException(openError("--states file", path));
    std::unique_ptr<OpenMM::State> state;
    try {
        state.reset(OpenMM::XmlSerializer::deserialize<OpenMM::State>(in));
    } catch (const std::exception& e) {
        throw OpenMMException("--states " + path + " is not an OpenMM State XML file (" + e.what() +
                              "); write it with XmlSerializer.serialize(context.getState(getPositions=True))");
    }
    Frame frame;
    if ((state->getDataTypes() & OpenMM::State::Positions) == 0)
        throw OpenMMException("--states " + path +
                              " holds no positions; save the state with context.getState(getPositions=True)");
    frame.positions = state->getPositions();
    if (static_cast<int>(frame.positions.size()) != numParticles)
        throw OpenMMException("--states " + path + " has " + std::to_string(frame.positions.size()) +
                              " positions but the System has " + std::to_string(numParticles) +
                              " particles; give states of this System");
    state->getPeriodicBoxVectors(frame.box[0], frame.box[1], frame.box[2]);
    frame.hasBox = true;
    frame.timePs = state->getTime();
    return frame;
}

// ---- geometry -----------------------------------------------------------------------------------

/// OpenMM's minimum image for a box in reduced form; `box` null when not periodic.
inline Vec3 minimumImage(Vec3 d, const Vec3* box) {
    if (box != nullptr) {
        d -= box[2] * std::round(d[2] / box[2][2]);
        d -= box[1] * std::round(d[1] / box[1][1]);
        d -= box[0] * std::round(d[0] / box[0][0]);
    }
    return d;
}

inline double norm(const Vec3& v) {
    return std::sqrt(v.dot(v));
}

// ---- the System ---------------------------------------------------------------------------------

struct Topology {
    int numParticles = 0;
    std::vector<std::vector<int>> molecules; ///< sorted atom lists, sorted by first atom
    std::vector<int> moleculeOf;
    std::vector<std::vector<int>> neighbors;    ///< bonds, constraints and virtual-site links (for making whole)
    std::vector<std::vector<int>> bondPartners; ///< chemical bonds only (stored in records)
};

/// Bonds: HarmonicBondForce and CustomBondForce bonds and constraints, except a constraint that only
/// fixes an angle (between a hydrogen and an atom bonded to a common neighbor, e.g. H-H in rigid water).
void buildGraph(const OpenMM::System& system, const std::vector<int>& elements, Topology& topology) {
    int n = system.getNumParticles();
    std::vector<std::set<int>> bonded(n), linked(n);
    auto add = [&](std::vector<std::set<int>>& graph, int i, int j) {
        if (i != j && i >= 0 && j >= 0 && i < n && j < n) {
            graph[i].insert(j);
            graph[j].insert(i);
        }
    };
    for (int f = 0; f < system.getNumForces(); f++) {
        const OpenMM::Force& force = system.getForce(f);
        if (auto* bonds = dynamic_cast<const OpenMM::HarmonicBondForce*>(&force)) {
            for (int b = 0; b < bonds->getNumBonds(); b++) {
                int i, j;
                double length, k;
                bonds->getBondParameters(b, i, j, length, k);
                add(bonded, i, j);
            }
        } else if (auto* custom = dynamic_cast<const OpenMM::CustomBondForce*>(&force)) {
            for (int b = 0; b < custom->getNumBonds(); b++) {
                int i, j;
                std::vector<double> parameters;
                custom->getBondParameters(b, i, j, parameters);
                add(bonded, i, j);
            }
        }
    }
    // Lengths of bonds and constraints (a custom bond's is unknown: 0), to recognize angle constraints.
    std::map<std::pair<int, int>, double> lengths;
    auto length = [&](int i, int j) {
        auto found = lengths.find({std::min(i, j), std::max(i, j)});
        return found == lengths.end() ? 0.0 : found->second;
    };
    for (int f = 0; f < system.getNumForces(); f++)
        if (auto* bonds = dynamic_cast<const OpenMM::HarmonicBondForce*>(&system.getForce(f)))
            for (int b = 0; b < bonds->getNumBonds(); b++) {
                int i, j;
                double r0, k;
                bonds->getBondParameters(b, i, j, r0, k);
                lengths[{std::min(i, j), std::max(i, j)}] = r0;
            }
    struct Constraint {
        int i, j;
        double distance;
    };
    std::vector<Constraint> constraints;
    for (int c = 0; c < system.getNumConstraints(); c++) {
        Constraint constraint;
        system.getConstraintParameters(c, constraint.i, constraint.j, constraint.distance);
        constraints.push_back(constraint);
        if (!bonded[constraint.i].count(constraint.j))
            lengths[{std::min(constraint.i, constraint.j), std::max(constraint.i, constraint.j)}] = constraint.distance;
    }
    std::vector<std::set<int>> all = bonded;
    for (const Constraint& c : constraints)
        add(all, c.i, c.j);
    // A constraint that involves a hydrogen and is the longest side of a triangle of bonds/constraints
    // fixes an angle (H-H of rigid water, OpenMM's HAngles): it is no chemical bond.
    for (const Constraint& c : constraints) {
        if (bonded[c.i].count(c.j))
            continue;
        bool hydrogen = elements[c.i] == 1 || elements[c.j] == 1;
        bool angle = false;
        for (int k : all[c.i])
            if (k != c.j && all[c.j].count(k) && c.distance > length(c.i, k) + 1e-6 &&
                c.distance > length(c.j, k) + 1e-6)
                angle = true;
        if (!(hydrogen && angle))
            add(bonded, c.i, c.j);
    }
    linked = all;
    for (int i = 0; i < n; i++)
        if (system.isVirtualSite(i)) {
            const OpenMM::VirtualSite& site = system.getVirtualSite(i);
            for (int p = 0; p < site.getNumParticles(); p++)
                add(linked, i, site.getParticle(p));
        }
    topology.neighbors.assign(n, {});
    topology.bondPartners.assign(n, {});
    for (int i = 0; i < n; i++) {
        topology.neighbors[i].assign(linked[i].begin(), linked[i].end());
        topology.bondPartners[i].assign(bonded[i].begin(), bonded[i].end());
    }
}

/// Makes every molecule whole: each atom at the minimum image of the atom it was reached from (breadth
/// first over `neighbors`, from the molecule's first atom, which keeps its position).  Atoms that the
/// graph does not reach (linked only through other kinds of forces) go to the minimum image of the root.
void makeWhole(const Topology& topology, const std::vector<Vec3>& raw, const Vec3* box, std::vector<Vec3>& whole,
               std::vector<char>& placed, std::vector<int>& queue) {
    whole = raw;
    if (box == nullptr)
        return;
    placed.assign(raw.size(), 0);
    for (const std::vector<int>& molecule : topology.molecules) {
        int root = molecule[0];
        placed[root] = 1;
        queue.assign(1, root);
        for (size_t q = 0; q < queue.size(); q++) {
            int i = queue[q];
            for (int j : topology.neighbors[i])
                if (!placed[j]) {
                    placed[j] = 1;
                    whole[j] = whole[i] + minimumImage(raw[j] - whole[i], box);
                    queue.push_back(j);
                }
        }
        for (int j : molecule)
            if (!placed[j]) {
                placed[j] = 1;
                whole[j] = whole[root] + minimumImage(raw[j] - whole[root], box);
            }
    }
}

void loadPlatformPlugins() {
    static bool loaded = false;
    if (loaded)
        return;
    loaded = true;
    if (OpenMM::Platform::getNumPlatforms() > 1)
        return; // already loaded by someone
    const char* fromEnvironment = std::getenv("OPENMM_PLUGIN_DIR");
    std::string directory = fromEnvironment != nullptr ? fromEnvironment : MRL_OPENMM_PLUGIN_DIR;
    OpenMM::Platform::loadPluginsFromDirectory(directory);
}

std::string availablePlatforms() {
    std::string names;
    for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++)
        names += (i > 0 ? ", " : "") + OpenMM::Platform::getPlatform(i).getName();
    return names;
}

std::string groupsText(const std::vector<int>& groups) {
    std::string text;
    for (size_t i = 0; i < groups.size(); i++) {
        if (i > 0)
            text += ',';
        text += std::to_string(groups[i]);
    }
    return text;
}

/// Splits `--states a.xml b.xml ...` out of argv (the files up to the next option): the parser sees
/// `--states a.xml` only, `states` gets every file.
std::vector<char*> extractStates(int argc, char** argv, int first, std::vector<std::string>& states) {
    std::vector<char*> out(argv, argv + first);
    for (int i = first; i < argc; i++) {
        std::string arg = argv[i];
        bool withValue = arg.rfind("--states=", 0) == 0;
        if (arg != "--states" && !withValue) {
            out.push_back(argv[i]);
            continue;
        }
        out.push_back(argv[i]);
        if (withValue)
            states.push_back(arg.substr(9));
        else if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
            throw UsageError("--states needs one or more OpenMM State XML files");
        else
            out.push_back(argv[i + 1]);
        while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
            states.push_back(argv[++i]);
    }
    return out;
}

} // namespace

int runCarve(int argc, char** argv, int first) {
    Options options(
        "carve",
        "Carve interaction environments out of your own OpenMM simulation.  For every frame and every central\n"
        "molecule, one record holds the molecules (connected components of the System's bonds and constraints)\n"
        "that have an atom within --radius of a central atom (minimum image when the System is periodic), made\n"
        "whole and placed at the minimum image of the central molecule's first atom, with the forces of the WHOLE\n"
        "simulated System (computed with your System in an OpenMM Context) on those atoms.\n"
        "\n"
        "Record contents: key f{frame:06d}/m{central:04d}; pair_id = the central residue name (\"atoms\" with\n"
        "--central-atoms); elements from the PDB element column (from the System's masses when blank: the\n"
        "nearest standard mass, so give elements when hydrogen masses were repartitioned); formal charges 0 and\n"
        "SMILES \"\" (unknown); molecule names = the residue name of each molecule's first atom; bonds = the\n"
        "System's bonds within the carved atoms, order 0 (unknown); anchor -1 and direction_3dmrl zero (no\n"
        "partner copies); weight 1; the box of each frame (zero when the System is not periodic).\n"
        "Energies: total_energy is the potential energy of the whole System (all force groups);\n"
        "interaction_energy/forces are the sum over --interaction-groups, or NaN when that option is not given\n"
        "(the file's interaction_forces attribute then says \"none\").  Units: nm, ps, kJ/mol, kJ/mol/nm.\n"
        "A rerun of the same command resumes: records already in --output are skipped.");
    options.option("system", "FILE", "the OpenMM System XML (XmlSerializer.serialize(system))", "", true)
        .option("topology", "FILE",
                "a PDB of the same atoms in the same order (residue names/numbers, chain, element columns)", "", true)
        .option("trajectory", "FILE", "the frames: a DCD file (e.g. from OpenMM's DCDReporter)")
        .option("states", "FILE...",
                "the frames: one or more OpenMM State XML files (positions and box; instead of --trajectory)")
        .option("central-resname", "NAME", "every residue with this name is a central molecule (one record each)")
        .option("central-atoms", "LIST", "one central set of zero-based particle indices, e.g. 0-20,25")
        .option("radius", "NM", "a molecule is taken when one of its atoms is within this distance of a central atom",
                "0.5")
        .option("interaction-groups", "LIST",
                "force groups whose sum is the interaction energy/forces, e.g. 1 or 1,2 (default: none -> NaN)")
        .option("frames", "START:STOP:STRIDE", "which frames (Python slice, e.g. 0:1000:10, ::5, -100:)", "::")
        .option("platform", "NAME", "the OpenMM platform for the forces (Reference, CPU, CUDA, OpenCL, ...)",
                "Reference")
        .option("precision", "P", "the platform's Precision property (single, mixed, double) where it has one")
        .option("output", "FILE", "the HDF5 dataset to write (or to resume)", "", true)
        .flag("overwrite", "remove an existing --output (and its journal) first instead of resuming")
        .flag("no-progress", "do not draw the progress bar");
    std::vector<std::string> stateFiles;
    std::vector<char*> args = extractStates(argc, argv, first, stateFiles);
    if (!options.parse(static_cast<int>(args.size()), args.data(), first))
        return 0;
    auto started = std::chrono::steady_clock::now();

    bool haveTrajectory = options.isSet("trajectory"), haveStates = !stateFiles.empty();
    if (haveTrajectory == haveStates)
        throw UsageError("give the frames with exactly one of --trajectory FILE.dcd or --states FILE.xml ...");
    bool byResidue = options.isSet("central-resname"), byAtoms = options.isSet("central-atoms");
    if (byResidue == byAtoms)
        throw UsageError(
            "choose the central molecules with exactly one of --central-resname NAME or --central-atoms LIST");
    double radius = options.getDouble("radius");
    if (!(radius > 0))
        throw UsageError("--radius must be a positive distance in nm, not " + options.get("radius"));
    std::vector<int> interactionGroups;
    if (options.isSet("interaction-groups"))
        interactionGroups = parseGroups(options.get("interaction-groups"));

    // The System.
    loadPlatformPlugins();
    std::string systemPath = options.get("system");
    std::unique_ptr<OpenMM::System> system;
    {
        std::ifstream in(systemPath);
        if (!in)
            throw OpenMMException(openError("--system file", systemPath));
        try {
            system.reset(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
        } catch (const std::exception& e) {
            throw OpenMMException("--system " + systemPath + " is not an OpenMM System XML file (" + e.what() +
                                  "); write it with XmlSerializer.serialize(system)");
        }
    }
    int n = system->getNumParticles();
    bool periodic = system->usesPeriodicBoundaryConditions();
    int interactionMask = 0;
    if (!interactionGroups.empty()) {
        for (int g : interactionGroups)
            interactionMask |= 1 << g;
        bool any = false;
        for (int f = 0; f < system->getNumForces(); f++)
            any = any || ((1 << system->getForce(f).getForceGroup()) & interactionMask) != 0;
        if (!any)
            throw UsageError("--interaction-groups " + groupsText(interactionGroups) +
                             ": no force of the System is in these force groups; put the intermolecular forces in "
                             "a group (force.setForceGroup) before serializing the System, or omit the option");
    }

    // The PDB.
    int numResidues = 0;
    std::vector<PdbAtom> pdb = readPdb(options.get("topology"), numResidues);
    if (static_cast<int>(pdb.size()) != n)
        throw OpenMMException("--topology " + options.get("topology") + " has " + std::to_string(pdb.size()) +
                              " atoms (ATOM/HETATM records) but the System has " + std::to_string(n) +
                              " particles; give the PDB of the same System, atoms in the same order");
    std::vector<int> elements(n);
    int fromMass = 0;
    for (int i = 0; i < n; i++) {
        elements[i] = pdb[i].element;
        if (elements[i] < 0) {
            elements[i] = elementFromMass(system->getParticleMass(i));
            fromMass++;
        }
    }
    if (fromMass > 0)
        std::cerr << "mrl-envgen carve: note: " << fromMass
                  << " atoms have no element in the PDB's element column (77-78); their elements were guessed from "
                     "the System's masses\n";

    // Central sets.
    std::vector<std::vector<int>> centralSets;
    std::string pairId;
    if (byResidue) {
        pairId = options.get("central-resname");
        std::map<int, std::vector<int>> residues;
        for (int i = 0; i < n; i++)
            if (pdb[i].residueName == pairId)
                residues[pdb[i].residue].push_back(i);
        for (auto& [residue, atoms] : residues)
            centralSets.push_back(atoms);
        if (centralSets.empty()) {
            std::set<std::string> names;
            for (const PdbAtom& atom : pdb)
                names.insert(atom.residueName);
            std::string list;
            for (const std::string& name : names)
                list += (list.empty() ? "" : " ") + name;
            if (list.size() > 300)
                list = list.substr(0, 300) + " ...";
            throw UsageError("--central-resname " + pairId + ": no residue of " + options.get("topology") +
                             " has this name; its residue names are: " + list);
        }
    } else {
        pairId = "atoms";
        centralSets.push_back(parseAtomList(options.get("central-atoms"), n));
    }

    // The Context (it also finds the molecules).
    std::string platformName = options.get("platform");
    OpenMM::Platform* platform = nullptr;
    try {
        platform = &OpenMM::Platform::getPlatformByName(platformName);
    } catch (const OpenMMException&) {
        std::string failures;
        for (const std::string& failure : OpenMM::Platform::getPluginLoadFailures())
            failures += "\n  " + failure;
        throw UsageError("--platform " + platformName + ": no such OpenMM platform; available: " +
                         availablePlatforms() + (failures.empty() ? "" : "; plugins that failed to load:" + failures));
    }
    std::map<std::string, std::string> properties;
    if (options.isSet("precision")) {
        const std::vector<std::string>& names = platform->getPropertyNames();
        if (std::find(names.begin(), names.end(), "Precision") == names.end())
            throw UsageError("--precision: the " + platformName +
                             " platform has no Precision property (Reference and CPU always use double/mixed); "
                             "omit the option");
        properties["Precision"] = options.get("precision");
    }
    OpenMM::VerletIntegrator integrator(0.001);
    std::unique_ptr<OpenMM::Context> context;
    try {
        context = std::make_unique<OpenMM::Context>(*system, integrator, *platform, properties);
    } catch (const std::exception& e) {
        throw OpenMMException("cannot create an OpenMM Context for --system " + systemPath + " on the " + platformName +
                              " platform: " + e.what());
    }
    Topology topology;
    topology.numParticles = n;
    topology.molecules = context->getMolecules();
    for (std::vector<int>& molecule : topology.molecules)
        std::sort(molecule.begin(), molecule.end());
    std::sort(topology.molecules.begin(), topology.molecules.end());
    topology.moleculeOf.assign(n, -1);
    for (size_t m = 0; m < topology.molecules.size(); m++)
        for (int i : topology.molecules[m])
            topology.moleculeOf[i] = static_cast<int>(m);
    buildGraph(*system, elements, topology);

    Vec3 defaultBox[3];
    system->getDefaultPeriodicBoxVectors(defaultBox[0], defaultBox[1], defaultBox[2]);
    auto checkRadius = [&](const Vec3* box, const std::string& where) {
        double halfWidth = 0.5 * std::min({box[0][0], box[1][1], box[2][2]});
        if (radius > halfWidth)
            throw UsageError("--radius " + options.get("radius") + " nm is more than half the periodic box (" +
                             std::to_string(halfWidth) + " nm) " + where +
                             ": minimum images are ambiguous; give a smaller --radius");
    };
    if (periodic)
        checkRadius(defaultBox, "of the System");

    // The frames.
    std::unique_ptr<DcdReader> dcd;
    long long numFrames;
    if (haveTrajectory) {
        dcd = std::make_unique<DcdReader>(options.get("trajectory"), n);
        numFrames = dcd->getNumFrames();
        if (numFrames == 0)
            throw OpenMMException("--trajectory " + options.get("trajectory") + " holds no complete frame");
        if (periodic && !dcd->hasUnitCell())
            std::cerr << "mrl-envgen carve: warning: the System is periodic but the DCD has no unit cell; the "
                         "System's default box is used for every frame\n";
    } else
        numFrames = static_cast<long long>(stateFiles.size());
    std::vector<long long> frames = parseSlice(options.get("frames"), numFrames, "frames", "frames");

    // The writer.  The options that decide the content of a record; not --frames, so that a rerun with more
    // frames (of a trajectory that has grown) adds the new ones.
    JsonObject settings;
    settings.setString("system", systemPath).setString("topology", options.get("topology"));
    if (haveTrajectory)
        settings.setString("trajectory", options.get("trajectory"));
    else {
        std::string list = "[";
        for (size_t i = 0; i < stateFiles.size(); i++)
            list += (i > 0 ? ", " : "") + JsonObject::quote(stateFiles[i]);
        settings.set("states", list + "]");
    }
    if (byResidue)
        settings.setString("central_resname", pairId);
    else
        settings.setString("central_atoms", options.get("central-atoms"));
    settings.setNumber("radius_nm", radius)
        .setString("interaction_groups", groupsText(interactionGroups))
        .setString("platform", platformName)
        .setString("precision", options.get("precision"));
    DatasetAttributes attributes;
    attributes.commandLine = joinCommandLine(argc, argv);
    attributes.optionsJson = settings.str(0);
    attributes.forceField = "user System";
    attributes.temperatureK = std::nan("");
    attributes.timestepPs = dcd && dcd->getTimestepPs() > 0 ? dcd->getTimestepPs() : std::nan("");
    attributes.seed = -1;
    attributes.interactionForces = interactionGroups.empty() ? "none" : "force_groups:" + groupsText(interactionGroups);
    DatasetWriter writer(options.get("output"), attributes, options.getFlag("overwrite"));

    // Carve.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    ProgressBar progress("carve", static_cast<long long>(frames.size()), "frames", !options.getFlag("no-progress"));
    long long written = 0, skipped = 0, framesDone = 0;
    long long minAtoms = std::numeric_limits<long long>::max(), maxAtoms = 0, sumAtoms = 0, counted = 0;
    Frame frame;
    std::vector<Vec3> whole, shifted(n);
    std::vector<char> scratch;
    std::vector<int> queue, localIndex(n, -1);
    std::vector<int> moleculeMark(topology.molecules.size(), -1);
    for (long long f : frames) {
        auto key = [&](size_t c) {
            char text[48];
            std::snprintf(text, sizeof(text), "f%06lld/m%04zu", f, c);
            return std::string(text);
        };
        bool allDone = true;
        for (size_t c = 0; c < centralSets.size(); c++)
            allDone = allDone && writer.contains(key(c));
        if (allDone) {
            skipped += static_cast<long long>(centralSets.size());
            progress.update(++framesDone, std::to_string(written) + " records");
            continue;
        }
        if (dcd)
            dcd->read(static_cast<int>(f), frame);
        else
            frame = readStateFile(stateFiles[f], n);
        if (periodic && !frame.hasBox)
            std::copy(defaultBox, defaultBox + 3, frame.box);
        const Vec3* box = periodic ? frame.box : nullptr;
        if (periodic)
            checkRadius(frame.box, "at frame " + std::to_string(f));

        // Energies and forces of the whole System.
        std::vector<Vec3> totalForces, interactionForces;
        double totalEnergy, interactionEnergy = nan;
        try {
            if (periodic)
                context->setPeriodicBoxVectors(frame.box[0], frame.box[1], frame.box[2]);
            context->setPositions(frame.positions);
            OpenMM::State state = context->getState(OpenMM::State::Energy | OpenMM::State::Forces);
            totalEnergy = state.getPotentialEnergy();
            totalForces = state.getForces();
            if (interactionMask != 0) {
                OpenMM::State part =
                    context->getState(OpenMM::State::Energy | OpenMM::State::Forces, false, interactionMask);
                interactionEnergy = part.getPotentialEnergy();
                interactionForces = part.getForces();
            }
        } catch (const std::exception& e) {
            throw OpenMMException("computing the forces of frame " + std::to_string(f) + " failed: " + e.what());
        }
        if (!std::isfinite(totalEnergy))
            std::cerr << "mrl-envgen carve: warning: frame " << f << " has a non-finite energy (" << totalEnergy
                      << " kJ/mol)\n";

        makeWhole(topology, frame.positions, box, whole, scratch, queue);
        for (size_t c = 0; c < centralSets.size(); c++) {
            std::string recordKey = key(c);
            if (writer.contains(recordKey)) {
                skipped++;
                continue;
            }
            const std::vector<int>& central = centralSets[c];
            // Central molecules first (the one of the first central atom leads), each shifted as a unit.
            std::vector<int> order;
            std::vector<Vec3> placedCentral;
            auto place = [&](int m, const Vec3& shift) {
                for (int i : topology.molecules[m])
                    shifted[i] = whole[i] + shift;
                moleculeMark[m] = static_cast<int>(c);
                order.push_back(m);
            };
            // The closest pair (an atom of m, a placed central atom): distance and the lattice shift of m.
            auto closest = [&](int m, double limit, Vec3& shift) {
                double best = std::numeric_limits<double>::infinity();
                for (int i : topology.molecules[m]) {
                    if (norm(minimumImage(whole[i] - placedCentral[0], box)) > limit)
                        continue;
                    for (const Vec3& p : placedCentral) {
                        Vec3 d = whole[i] - p, image = minimumImage(d, box);
                        double distance = norm(image);
                        if (distance < best) {
                            best = distance;
                            shift = image - d;
                        }
                    }
                }
                return best;
            };
            int leading = topology.moleculeOf[central[0]];
            place(leading, Vec3());
            std::set<int> centralAtoms(central.begin(), central.end());
            std::set<int> centralMolecules;
            for (int i : central)
                centralMolecules.insert(topology.moleculeOf[i]);
            for (int i : central)
                if (topology.moleculeOf[i] == leading)
                    placedCentral.push_back(shifted[i]);
            for (int m : centralMolecules) {
                if (m == leading)
                    continue;
                Vec3 shift;
                closest(m, std::numeric_limits<double>::infinity(), shift);
                place(m, shift);
                for (int i : topology.molecules[m])
                    if (centralAtoms.count(i))
                        placedCentral.push_back(shifted[i]);
            }
            double extent = 0;
            for (const Vec3& p : placedCentral)
                extent = std::max(extent, norm(p - placedCentral[0]));
            for (size_t m = 0; m < topology.molecules.size(); m++) {
                if (moleculeMark[m] == static_cast<int>(c))
                    continue;
                Vec3 shift;
                if (closest(static_cast<int>(m), extent + radius + 1e-9, shift) <= radius)
                    place(static_cast<int>(m), shift);
            }
            std::sort(order.begin() + static_cast<long>(centralMolecules.size()), order.end());

            // The record.
            DatasetRecord record;
            record.key = recordKey;
            record.pairId = pairId;
            record.weight = 1.0;
            record.centralMolecule = 0;
            std::vector<int> atoms;
            for (size_t local = 0; local < order.size(); local++) {
                int m = order[local];
                record.smiles.push_back("");
                record.moleculeNames.push_back(pdb[topology.molecules[m][0]].residueName);
                record.isCentral.push_back(centralMolecules.count(m) ? 1 : 0);
                for (int i : topology.molecules[m]) {
                    localIndex[i] = static_cast<int>(atoms.size());
                    atoms.push_back(i);
                    record.atomicNumbers.push_back(elements[i]);
                    record.formalCharges.push_back(0);
                    record.moleculeIndex.push_back(static_cast<int>(local));
                    record.anchor.push_back(-1);
                }
            }
            for (int i : atoms)
                for (int j : topology.bondPartners[i])
                    if (j > i && localIndex[j] >= 0) {
                        record.bonds.push_back({localIndex[i], localIndex[j]});
                        record.bondOrders.push_back(0.0f);
                    }
            record.timePs.push_back(frame.timePs);
            record.totalEnergyKJPerMol.push_back(totalEnergy);
            record.interactionEnergyKJPerMol.push_back(interactionEnergy);
            for (int a = 0; a < 3; a++)
                for (int k = 0; k < 3; k++)
                    record.boxNm.push_back(periodic ? static_cast<float>(frame.box[a][k]) : 0.0f);
            for (int i : atoms)
                for (int k = 0; k < 3; k++) {
                    record.positionsNm.push_back(static_cast<float>(shifted[i][k]));
                    record.totalForcesKJPerMolNm.push_back(static_cast<float>(totalForces[i][k]));
                    record.interactionForcesKJPerMolNm.push_back(
                        interactionMask != 0 ? static_cast<float>(interactionForces[i][k]) : static_cast<float>(nan));
                    record.direction3DMRL.push_back(0.0f);
                }
            for (int i : atoms)
                localIndex[i] = -1;
            record.validate();
            writer.addRecord(record);
            written++;
            long long count = static_cast<long long>(atoms.size());
            minAtoms = std::min(minAtoms, count);
            maxAtoms = std::max(maxAtoms, count);
            sumAtoms += count;
            counted++;
        }
        std::fill(moleculeMark.begin(), moleculeMark.end(), -1);
        progress.update(++framesDone, std::to_string(written) + " records");
    }
    progress.finish();
    writer.fold();

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    JsonObject atomsPerRecord;
    atomsPerRecord.setNumber("min", counted > 0 ? static_cast<double>(minAtoms) : nan)
        .setNumber("mean", counted > 0 ? static_cast<double>(sumAtoms) / counted : nan)
        .setNumber("max", counted > 0 ? static_cast<double>(maxAtoms) : nan);
    JsonObject summary;
    summary.setString("output", writer.getPath())
        .setNumber("records", static_cast<double>(written))
        .setNumber("records_already_present", static_cast<double>(skipped))
        .setNumber("frames", static_cast<double>(frames.size()))
        .setNumber("central_molecules", static_cast<double>(centralSets.size()))
        .set("atoms_per_record", atomsPerRecord.str(2, 1))
        .setString("interaction_forces", attributes.interactionForces)
        .setNumber("seconds", seconds);
    std::cout << summary.str() << std::endl;
    return 0;
}

} // namespace MRLPlugin
