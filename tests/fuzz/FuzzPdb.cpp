// SPDX-License-Identifier: MIT
// Fuzz target: the PDB reader of mrl-envgen carve (ATOM/HETATM records, residues, elements), and the State XML
// reader of carve --states on the same bytes.
#include "FuzzUtilities.h"
#include "MRLReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    MRLFuzz::InputFile file(data, size, ".pdb");
    try {
        MRLPlugin::readPdb(file.getPath(), "--topology");
    } catch (const OpenMM::OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    try {
        MRLPlugin::readStateFile(file.getPath(), "--states");
    } catch (const OpenMM::OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    return 0;
}
