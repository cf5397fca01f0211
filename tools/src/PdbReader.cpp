// SPDX-License-Identifier: MIT
#include <fstream>

#include "MRLElements.h"
#include "MRLReaders.h"
#include "MRLText.h"

using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

/// `count` characters of a fixed-column line from `first` (0-based), shorter or empty past its end.
std::string columns(const std::string& line, size_t first, size_t count) {
    return first < line.size() ? line.substr(first, count) : "";
}

} // namespace

PdbTopology readPdb(const std::string& path, const std::string& label) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException(openError(label + " PDB file", path));
    PdbTopology topology;
    std::string line, lastResidueId;
    bool newResidue = true;
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
            throw OpenMMException(label + " " + path + " line " + std::to_string(lineNumber) +
                                  ": an ATOM/HETATM line shorter than 27 columns; write the PDB with a standard "
                                  "writer (e.g. OpenMM's PDBFile)");
        PdbAtom atom;
        atom.name = trim(columns(line, 12, 4));
        atom.residueName = trim(columns(line, 17, 4));
        // chain (22), residue number (23-26), insertion code (27), residue name (18-21)
        std::string residueId = columns(line, 21, 6) + "|" + atom.residueName;
        if (newResidue || residueId != lastResidueId)
            topology.numResidues++;
        newResidue = false;
        lastResidueId = residueId;
        atom.residue = topology.numResidues - 1;
        std::string symbol = trim(columns(line, 76, 2));
        atom.element = symbol.empty() ? -1 : elementFromSymbol(symbol);
        topology.atoms.push_back(atom);
    }
    if (topology.atoms.empty())
        throw OpenMMException(label + " " + path +
                              " has no ATOM or HETATM records; give a PDB of the simulated System");
    return topology;
}

} // namespace MRLPlugin
