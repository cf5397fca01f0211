#ifndef OPENMM_MRL_DATASET_LAYOUT_H_
#define OPENMM_MRL_DATASET_LAYOUT_H_

// SPDX-License-Identifier: MIT
// The dataset layout of docs/dataset.md, in one place: every HDF5 dataset of a file with its type, row
// shape and units.  The C++ writer creates files from this table; the Python reader checks files against
// it (through the openmmmrl.dataset_core module); a test checks that docs/dataset.md shows the same table.

#include <array>

namespace MRLPlugin {

/// The root attribute `format` of every dataset file.
inline constexpr const char* DATASET_FORMAT_NAME = "openmm-mrl-dataset";
/// The root attribute `format_version` this release writes; it reads this one and every older one.
inline constexpr int DATASET_FORMAT_VERSION = 3;
/// The oldest format version this release reads (version 1: no label sets).
inline constexpr int DATASET_OLDEST_FORMAT_VERSION = 1;
/// The journal is folded into the file once it holds max(this, a quarter of the file's size) bytes.
inline constexpr long long DATASET_FOLD_MIN_BYTES = 16ll << 20;

/// The element type of a column (its HDF5 type in the file: little-endian; strings fixed-length NUL-padded UTF-8
/// from format version 3, variable-length UTF-8 in versions 1 and 2).
enum class ColumnType { Int8, Int32, Int64, Float32, Float64, String };

/// One HDF5 dataset `/group/name` of shape [rows, rowShape...] that grows along its first axis.
struct DatasetColumn {
    const char* group;
    const char* name;
    ColumnType type;
    std::array<int, 2> rowShape; ///< the trailing dimensions; 0 ends the list ({0, 0}: one value per row)
    bool offset;                 ///< an offset column: starts with one row holding 0, chunked, not compressed
    const char* units;           ///< the `units` attribute, or nullptr for none
};

/// Every dataset of a file, group by group, in the order of docs/dataset.md.
inline constexpr DatasetColumn DATASET_COLUMNS[] = {
    {"records", "key", ColumnType::String, {0, 0}, false, nullptr},
    {"records", "pair_id", ColumnType::String, {0, 0}, false, nullptr},
    {"records", "weight", ColumnType::Float64, {0, 0}, false, "1"},
    {"records", "central_molecule", ColumnType::Int32, {0, 0}, false, nullptr},
    {"records", "atom_offset", ColumnType::Int64, {0, 0}, true, nullptr},
    {"records", "molecule_offset", ColumnType::Int64, {0, 0}, true, nullptr},
    {"records", "bond_offset", ColumnType::Int64, {0, 0}, true, nullptr},
    {"records", "frame_offset", ColumnType::Int64, {0, 0}, true, nullptr},
    {"atoms", "atomic_number", ColumnType::Int32, {0, 0}, false, nullptr},
    {"atoms", "formal_charge", ColumnType::Int32, {0, 0}, false, "e"},
    {"atoms", "molecule_index", ColumnType::Int32, {0, 0}, false, nullptr},
    {"atoms", "anchor", ColumnType::Int32, {0, 0}, false, nullptr},
    {"molecules", "smiles", ColumnType::String, {0, 0}, false, nullptr},
    {"molecules", "name", ColumnType::String, {0, 0}, false, nullptr},
    {"molecules", "is_central", ColumnType::Int8, {0, 0}, false, nullptr},
    {"bonds", "index", ColumnType::Int32, {2, 0}, false, nullptr},
    {"bonds", "order", ColumnType::Float32, {0, 0}, false, "1"},
    {"frames", "time", ColumnType::Float64, {0, 0}, false, "ps"},
    {"frames", "box", ColumnType::Float32, {3, 3}, false, "nm"},
    {"frames", "total_energy", ColumnType::Float64, {0, 0}, false, "kJ/mol"},
    {"frames", "interaction_energy", ColumnType::Float64, {0, 0}, false, "kJ/mol"},
    {"frames", "atom_offset", ColumnType::Int64, {0, 0}, true, nullptr},
    {"frame_atoms", "positions", ColumnType::Float32, {3, 0}, false, "nm"},
    {"frame_atoms", "total_forces", ColumnType::Float32, {3, 0}, false, "kJ/mol/nm"},
    {"frame_atoms", "interaction_forces", ColumnType::Float32, {3, 0}, false, "kJ/mol/nm"},
    {"frame_atoms", "direction_3dmrl", ColumnType::Float32, {3, 0}, false, "1"},
    {"skipped", "key", ColumnType::String, {0, 0}, false, nullptr},
    {"skipped", "pair_id", ColumnType::String, {0, 0}, false, nullptr},
    {"skipped", "reason", ColumnType::String, {0, 0}, false, nullptr},
};

/// The datasets of one label set NAME (format version 2): group `labels/NAME`, rows aligned with `/frames` and
/// `/frame_atoms` (frame f of the file has its labels in row f).  A file's label sets are listed in the root
/// attribute `label_sets` (comma-separated names); each group has a `method` attribute (e.g. "GFN2-xTB").
inline constexpr DatasetColumn LABEL_SET_COLUMNS[] = {
    {"labels/NAME", "total_energy", ColumnType::Float64, {0, 0}, false, "kJ/mol"},
    {"labels/NAME", "interaction_energy", ColumnType::Float64, {0, 0}, false, "kJ/mol"},
    {"labels/NAME", "total_forces", ColumnType::Float32, {3, 0}, false, "kJ/mol/nm"},
    {"labels/NAME", "interaction_forces", ColumnType::Float32, {3, 0}, false, "kJ/mol/nm"},
};

} // namespace MRLPlugin

#endif
