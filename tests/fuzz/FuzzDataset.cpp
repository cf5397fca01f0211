// SPDX-License-Identifier: MIT
// Fuzz target: the C++ dataset reader (HDF5 files of docs/dataset.md): attributes, keys, counts, every record and
// the skipped inputs.  Python's reader has its own target (tests/fuzz/fuzz_dataset_reader.py).
#include "FuzzUtilities.h"
#include "MRLDataset.h"
#include "openmm/OpenMMException.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    MRLFuzz::InputFile file(data, size, ".h5");
    try {
        MRLPlugin::DatasetReader reader(file.getPath());
        reader.getFrameCounts();
        reader.getAtomCounts();
        for (int r = 0; r < reader.getNumRecords() && r < 64; r++)
            reader.getRecord(r).validate();
        reader.getSkipped();
    } catch (const OpenMM::OpenMMException& error) {
        MRLFuzz::rejected(error);
    }
    return 0;
}
