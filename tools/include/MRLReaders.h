#ifndef OPENMM_MRL_READERS_H_
#define OPENMM_MRL_READERS_H_

// SPDX-License-Identifier: MIT
// Readers of a user's simulation files: a PDB (atom and residue names, elements), frames from a DCD
// trajectory or OpenMM State XML files, and an OpenMM System XML.  Lengths in nm, times in ps.
// Every reader takes a `label` that its error messages name the input by (e.g. "--topology"); bad
// input throws an OpenMMException naming the label, the file and the problem.

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "openmm/OpenMMException.h"
#include "openmm/Vec3.h"

namespace OpenMM {
class System;
} // namespace OpenMM

namespace MRLPlugin {

/// One ATOM or HETATM record of a PDB.
struct PdbAtom {
    std::string name, residueName;
    int residue = 0;  ///< index of its residue (consecutive atoms with the same chain, number, name)
    int element = -1; ///< -1 when the element column is blank or unknown
};

/// The atoms of a PDB's first model.
struct PdbTopology {
    std::vector<PdbAtom> atoms;
    int numResidues = 0; ///< TER and every change of chain, residue number, insertion code or name start a residue
};

/// Reads the ATOM/HETATM records of a PDB up to its first ENDMDL.  Throws when the file cannot be opened,
/// has a truncated atom line, or no atoms.
PdbTopology readPdb(const std::string& path, const std::string& label);

/// The positions of one frame.
struct TrajectoryFrame {
    std::vector<OpenMM::Vec3> positions; ///< nm
    bool hasBox = false;
    OpenMM::Vec3 box[3]; ///< nm, OpenMM's reduced form
    double timePs = 0.0; ///< NaN when the file does not say
};

/// The box vectors in OpenMM's reduced form of a unit cell with edges a, b, c (nm) and the cosines of the
/// angles alpha (between b and c), beta (a, c), gamma (a, b).
void boxFromLengthsAndCosines(double a, double b, double c, double cosAlpha, double cosBeta, double cosGamma,
                              OpenMM::Vec3* box);

/// A DCD file (CHARMM or X-PLOR flavour, either byte order, 32-bit record markers), as written by
/// OpenMM's DCDReporter: a unit cell record per frame (A, cos gamma, B, cos beta, cos alpha, C in
/// Angstrom; angles given in degrees by some other programs are recognized), then x, y, z in Angstrom.
/// Frames are read on demand; an incomplete last frame is not counted (see getIncompleteBytes), but a file with
/// fewer complete frames than its header counts was cut short and is refused.
class DcdReader {
public:
    /// Reads the header; throws when the file cannot be opened or is no DCD that this reader supports.
    DcdReader(const std::string& path, const std::string& label);
    int getNumAtoms() const { return numAtoms; }
    /// The number of complete frames.
    int getNumFrames() const { return numFrames; }
    /// The bytes after the last complete frame (a simulation still running or killed); 0 normally.
    long long getIncompleteBytes() const { return incompleteBytes; }
    bool hasUnitCell() const { return hasCell; }
    /// The time step (ps), to the float precision it is stored with; 0 or less when the file has none.
    double getTimestepPs() const { return timestepPs; }
    /// Reads frame `frame` (0-based, < getNumFrames()); its time is (first step + frame * interval) * time step.
    void read(int frame, TrajectoryFrame& out);

private:
    void readHeader(const char* header);
    void readTitleAndAtomCount();
    void readUnitCell(int frame, TrajectoryFrame& out);
    int32_t integer(const char* bytes) const;
    OpenMM::OpenMMException corrupt(const std::string& why, int frame = -1) const;
    int32_t readMarker(const char* what, int frame = -1);
    void expectMarker(int32_t expected, const char* what, int frame = -1);

    std::string path, label;
    std::ifstream in;
    bool swap = false, hasCell = false;
    int numAtoms = 0, numFrames = 0, headerFrames = 0, firstStep = 0, interval = 1;
    long long headerSize = 0, frameSize = 0, incompleteBytes = 0;
    double timestepPs = 0.0;
    std::vector<float> buffer;
};

/// The first structural problem of an XML text ("" when none): unbalanced or unterminated tags, quotes and comments,
/// NUL bytes, text outside the root.  OpenMM 8.6's XML parser (irrXML) reads past the end of such text (a crash,
/// found by tests/fuzz), so every XML file is checked with this before XmlSerializer sees it.
std::string findXmlStructureError(const std::string& text);

/// One frame from an OpenMM State XML file (XmlSerializer.serialize(state)): positions, box and time.
/// Throws when the file cannot be opened, is not well-formed XML, is no State, or holds no positions.
TrajectoryFrame readStateFile(const std::string& path, const std::string& label);

/// An OpenMM System from its XML (XmlSerializer.serialize(system)).  Load the plugins first
/// (loadPlatformPlugins) when the System holds forces of a plugin.
std::unique_ptr<OpenMM::System> readSystemFile(const std::string& path, const std::string& label);

} // namespace MRLPlugin

#endif
