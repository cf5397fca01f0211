#ifndef OPENMM_MRL_DATASET_H_
#define OPENMM_MRL_DATASET_H_

// SPDX-License-Identifier: MIT
// The HDF5 dataset of interaction environments (docs/dataset.md): records, the crash-safe writer
// (journal + atomic fold) and a reader.  Units are OpenMM's: nm, ps, kJ/mol, kJ/mol/nm.

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "MRLDatasetLayout.h"

namespace MRLPlugin {

/// Energies and forces of every frame of a record from another method than the file's own (a label set of
/// format version 2, e.g. GFN2-xTB for MMFF94 frames).  Units as the record's own: kJ/mol, kJ/mol/nm.
struct LabelSet {
    std::string name; ///< the label set's name in the file, e.g. "gfn2"
    std::vector<double> totalEnergyKJPerMol, interactionEnergyKJPerMol;    ///< one per frame
    std::vector<float> totalForcesKJPerMolNm, interactionForcesKJPerMolNm; ///< frames × atoms × 3
};

/// One interaction environment (a fixed set of atoms with one topology) and its frames.
/// Per-frame arrays are concatenated over frames: `positionsNm` holds numFrames() * numAtoms() * 3 values.
struct DatasetRecord {
    std::string key;    ///< unique in a file, e.g. "p000012/c0"
    std::string pairId; ///< the input's id (CSV `id` column, or a name)
    double weight = 1.0;
    int centralMolecule = 0;

    // Per atom.
    std::vector<int> atomicNumbers, formalCharges, moleculeIndex, anchor;
    // Per molecule.
    std::vector<std::string> smiles;        ///< canonical SMILES, or "" when unknown (carved molecules)
    std::vector<std::string> moleculeNames; ///< e.g. "central", "partner", or a residue name
    std::vector<int> isCentral;
    // Covalent bonds (local atom indices) and orders (1, 1.5, 2, 3; 0 when unknown).
    std::vector<std::array<int, 2>> bonds;
    std::vector<float> bondOrders;

    // Per frame.
    std::vector<double> timePs, totalEnergyKJPerMol, interactionEnergyKJPerMol;
    std::vector<float> boxNm; ///< 9 per frame (box vectors as rows), zero when not periodic
    // Per frame and atom, 3 values each.
    std::vector<float> positionsNm, totalForcesKJPerMolNm, interactionForcesKJPerMolNm, direction3DMRL;
    /// Label sets, one per label set of the file, in the order of DatasetAttributes::labelSets.
    std::vector<LabelSet> labelSets;

    int numAtoms() const { return static_cast<int>(atomicNumbers.size()); }
    int numMolecules() const { return static_cast<int>(smiles.size()); }
    int numFrames() const { return static_cast<int>(timePs.size()); }
    /// Throws OpenMMException when array lengths disagree with numAtoms()/numFrames().
    void validate() const;
};

/// An input that gave no record, and why.
struct SkippedInput {
    std::string key, pairId, reason;
};

/// Root attributes of a dataset file.
struct DatasetAttributes {
    std::string tool = std::string("mrl-envgen ") + MRL_VERSION;
    std::string commandLine;
    std::string optionsJson = "{}"; ///< every option that decides the content; a resumed run must match
    std::string forceField = "MMFF94";
    double temperatureK = std::numeric_limits<double>::quiet_NaN();
    double timestepPs = std::numeric_limits<double>::quiet_NaN();
    long long seed = -1;
    std::string interactionForces = "force_groups:1";
    /// The file's label sets (format version 2): {name, method}, e.g. {"gfn2", "GFN2-xTB (tblite 0.8.0)"}.  Every
    /// record carries each of them; names are letters, digits, '_' and '-'.
    std::vector<std::pair<std::string, std::string>> labelSets;
};

/// Reads a dataset file (never its journal).
class DatasetReader {
public:
    /// Opens `path`; throws OpenMMException when it is missing or not an openmm-mrl dataset.  Every method
    /// throws an OpenMMException naming the file when the file is damaged (truncated, bytes changed).
    explicit DatasetReader(const std::string& path);
    ~DatasetReader();
    DatasetReader(const DatasetReader&) = delete;
    DatasetReader& operator=(const DatasetReader&) = delete;

    const DatasetAttributes& getAttributes() const { return attributes; }
    int getNumRecords() const { return static_cast<int>(keys.size()); }
    const std::vector<std::string>& getKeys() const { return keys; }
    /// Record r with all its frames.
    DatasetRecord getRecord(int r) const;
    /// Frames per record and atoms per record, without reading frame data.
    std::vector<long long> getFrameCounts() const;
    std::vector<long long> getAtomCounts() const;
    std::vector<SkippedInput> getSkipped() const;

private:
    std::string path;
    long long file = -1;
    DatasetAttributes attributes;
    std::vector<std::string> keys;
};

/// Appends records to a dataset, crash-safely (docs/dataset.md, "Crash safety: the journal").
class DatasetWriter {
public:
    /// Opens `path` for appending: creates it, or (when it exists) checks that its options JSON equals
    /// `attributes.optionsJson` and folds a journal left by an interrupted run (a journal whose file is
    /// missing is folded into a new file).  With `overwrite`, an existing file and journal are removed
    /// first.  The journal is folded once it holds max(`foldBytes`, a quarter of the file's size) bytes.
    DatasetWriter(const std::string& path, const DatasetAttributes& attributes, bool overwrite = false,
                  long long foldBytes = DATASET_FOLD_MIN_BYTES);
    /// Folds the journal (errors are reported on stderr, never thrown).
    ~DatasetWriter();
    DatasetWriter(const DatasetWriter&) = delete;
    DatasetWriter& operator=(const DatasetWriter&) = delete;

    /// True when a record or a skip with this key is in the file or the journal.
    bool contains(const std::string& key) const { return done.count(key) > 0; }
    /// Every key (records and skips) in the file or the journal, sorted.
    std::vector<std::string> getKeys() const;
    /// Writes one record to the journal (atomically) and folds when the journal has grown enough; throws when
    /// its key is already present.
    void addRecord(const DatasetRecord& record);
    /// Records that an input gave no record; throws when its key is already present.
    void addSkipped(const SkippedInput& skipped);
    /// Appends every journal entry to the file (atomic replace), then empties the journal.
    void fold();
    const std::string& getPath() const { return path; }

private:
    void maybeFold();
    // append receives the HDF5 file id (hid_t, a 64-bit integer) of the new journal file.
    void journalEntry(const std::string& key, const std::string& name, const std::function<void(int64_t)>& append);
    std::string path, journal;
    DatasetAttributes attributes;
    std::set<std::string> done;
    long long foldBytes;
    long long journalBytes = 0;
};

/// Merges dataset files into `output` (records and skips in input order; keys must be unique, a key
/// present in two inputs is an error).  The output's attributes are those of the first input, with
/// `command_line` replaced.  Written to a temporary file and renamed: never a half-written output.
void mergeDatasets(const std::vector<std::string>& inputs, const std::string& output, const std::string& commandLine);

/// Crash-safe file helpers: write-to-temporary, fsync, rename.
void fsyncPath(const std::string& path);

} // namespace MRLPlugin

#endif
