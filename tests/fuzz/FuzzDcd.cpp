// SPDX-License-Identifier: MIT
// Fuzz target: the DCD reader of mrl-envgen carve (header, title, atom count, unit cells, frames).
#include "FuzzUtilities.h"
#include "MRLReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    MRLFuzz::InputFile file(data, size, ".dcd");
    try {
        MRLPlugin::DcdReader reader(file.getPath(), "--trajectory");
        MRLPlugin::TrajectoryFrame frame;
        for (int i = 0; i < reader.getNumFrames() && i < 16; i++)
            reader.read(i, frame);
    } catch (const OpenMM::OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    return 0;
}
