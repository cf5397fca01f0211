// SPDX-License-Identifier: MIT
// The dataset file (docs/dataset.md) with the HDF5 C API: one layout, written by appending records to
// ragged arrays, and a journal that makes appends crash-safe (files are replaced, never edited).
#include "MRLDataset.h"
#include "MRLDatasetLayout.h"

#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <new>
#include <stdexcept>

#include "openmm/OpenMMException.h"

namespace fs = std::filesystem;
using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

/// Crash testing: MRL_DATASET_CRASH_AT=<point> kills the process with SIGKILL at that point of a fold
/// (docs/dataset.md, "Crash safety"), so that tests can check what an interrupted fold leaves behind.
bool crashesAt(const char* point) {
    const char* wanted = std::getenv("MRL_DATASET_CRASH_AT");
    return wanted != nullptr && std::string(wanted) == point;
}

void crashIfAt(const char* point) {
    if (crashesAt(point))
        ::raise(SIGKILL);
}

/// HDF5 prints its own error stack by default; our exceptions carry the message instead.
void silenceHdf5() {
    static bool done = false;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
        done = true;
    }
}

/// Owns an HDF5 identifier and closes it with the matching function.
class Handle {
public:
    Handle(hid_t id, herr_t (*closer)(hid_t), const std::string& what) : id(id), closer(closer) {
        if (id < 0)
            throw OpenMMException("HDF5 error: " + what);
    }
    ~Handle() {
        if (id >= 0)
            closer(id);
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    operator hid_t() const { return id; }

private:
    hid_t id;
    herr_t (*closer)(hid_t);
};

void check(herr_t status, const std::string& what) {
    if (status < 0)
        throw OpenMMException("HDF5 error: " + what);
}

/// Variable-length UTF-8: the strings of format versions 1 and 2 (kept in HDF5's global heap), read and appended to.
hid_t stringType() {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    return type;
}

/// Fixed-length, NUL-padded UTF-8 of `width` bytes: the strings of format version 3.  They never touch HDF5's
/// global heap, whose reader loops forever on a damaged heap collection (libhdf5 1.10.8 and 2.0.0; found by
/// tests/fuzz), and a column widens when a longer string arrives (widenStrings).
hid_t fixedStringType(size_t width) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, std::max<size_t>(width, 1));
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    H5Tset_cset(type, H5T_CSET_UTF8);
    return type;
}

/// The longest string a file of this release holds (a SMILES, a key, an error message): 1 MiB.  A wider type in
/// a file is damage, refused before anything of that size is allocated.
const size_t MAX_STRING_BYTES = size_t(1) << 20;

/// The first column width of a new string column (bytes); it doubles as needed.
const size_t FIRST_STRING_WIDTH = 16;

void checkNoNul(const std::string& value, const std::string& where) {
    if (value.find('\0') != std::string::npos)
        throw OpenMMException("a string of " + where + " holds a NUL character, which a dataset cannot store");
    if (value.size() > MAX_STRING_BYTES)
        throw OpenMMException("a string of " + where + " is longer than " + std::to_string(MAX_STRING_BYTES) +
                              " bytes, the most a dataset stores");
}

// ---- attributes -------------------------------------------------------------------------------

void writeStringAttribute(hid_t object, const char* name, const std::string& value) {
    checkNoNul(value, std::string("the attribute ") + name);
    Handle type(fixedStringType(value.size()), H5Tclose, "string type");
    Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
    if (H5Aexists(object, name) > 0)
        H5Adelete(object, name);
    Handle attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                     std::string("creating attribute ") + name);
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    check(H5Awrite(attribute, type, padded.data()), std::string("writing attribute ") + name);
}

template <class T> void writeNumberAttribute(hid_t object, const char* name, T value, hid_t type) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
    if (H5Aexists(object, name) > 0)
        H5Adelete(object, name);
    Handle attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                     std::string("creating attribute ") + name);
    check(H5Awrite(attribute, type, &value), std::string("writing attribute ") + name);
}

bool hasAttribute(hid_t object, const char* name) {
    return H5Aexists(object, name) > 0;
}

std::string readStringAttribute(hid_t object, const char* name) {
    Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, std::string("no attribute ") + name);
    Handle fileType(H5Aget_type(attribute), H5Tclose, "attribute type");
    if (H5Tget_class(fileType) != H5T_STRING)
        throw OpenMMException(std::string("the attribute ") + name + " is not a string");
    if (H5Tis_variable_str(fileType) > 0) {
        Handle type(stringType(), H5Tclose, "string type");
        char* text = nullptr;
        check(H5Aread(attribute, type, &text), std::string("reading attribute ") + name);
        std::string value = text != nullptr ? text : "";
        H5free_memory(text);
        return value;
    }
    size_t size = H5Tget_size(fileType);
    if (size == 0 || size > MAX_STRING_BYTES)
        throw OpenMMException(std::string("the attribute ") + name + " has an impossible string size");
    std::string value(size, '\0');
    Handle type(H5Tcopy(fileType), H5Tclose, "string type"); // the file's padding and character set, unconverted
    check(H5Aread(attribute, type, value.data()), std::string("reading attribute ") + name);
    return value.substr(0, value.find('\0'));
}

template <class T> T readNumberAttribute(hid_t object, const char* name, hid_t type, T missing) {
    if (!hasAttribute(object, name))
        return missing;
    Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, std::string("no attribute ") + name);
    T value{};
    check(H5Aread(attribute, type, &value), std::string("reading attribute ") + name);
    return value;
}

// ---- extensible datasets ----------------------------------------------------------------------

/// Creates an empty dataset of shape [0, trailing...] that grows along its first axis.
void createDataset(hid_t file, const std::string& path, hid_t type, std::vector<hsize_t> trailing, bool compress,
                   const char* units = nullptr) {
    std::vector<hsize_t> dims = {0}, maxDims = {H5S_UNLIMITED}, chunk;
    hsize_t perRow = 1;
    for (hsize_t d : trailing) {
        dims.push_back(d);
        maxDims.push_back(d);
        perRow *= d;
    }
    chunk = dims;
    // Compressed chunks of 16 K values cost little when nearly empty; offset columns are stored as they are, in
    // chunks of 1024 rows (8 KiB), so that a small file stays small (a record's offsets are a few reads apart).
    chunk[0] = compress ? std::max<hsize_t>(64, 16384 / perRow) : 1024;
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxDims.data()), H5Sclose,
                 "dataspace for " + path);
    Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
    check(H5Pset_chunk(properties, static_cast<int>(chunk.size()), chunk.data()), "chunking " + path);
    if (compress) {
        H5Pset_shuffle(properties);
        check(H5Pset_deflate(properties, 4), "compression of " + path);
    }
    Handle dataset(H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, properties, H5P_DEFAULT), H5Dclose,
                   "creating " + path);
    if (units != nullptr)
        writeStringAttribute(dataset, "units", units);
}

/// Rows (first dimension) of a dataset.
hsize_t numRows(hid_t file, const std::string& path) {
    Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose, "the file has no dataset " + path);
    Handle space(H5Dget_space(dataset), H5Sclose, "dataspace of " + path);
    hsize_t dims[4] = {0, 0, 0, 0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    return dims[0];
}

/// Appends `rows` rows held in `data` (row-major, trailing dimensions as the dataset's).
void appendRows(hid_t file, const std::string& path, hid_t memoryType, const void* data, hsize_t rows) {
    if (rows == 0)
        return;
    Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose, "the file has no dataset " + path);
    int rank;
    std::vector<hsize_t> dims(4, 0);
    {
        Handle space(H5Dget_space(dataset), H5Sclose, "dataspace of " + path);
        rank = H5Sget_simple_extent_ndims(space);
        H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    }
    dims.resize(rank);
    std::vector<hsize_t> start(rank, 0), count = dims;
    start[0] = dims[0];
    count[0] = rows;
    dims[0] += rows;
    check(H5Dset_extent(dataset, dims.data()), "extending " + path);
    Handle fileSpace(H5Dget_space(dataset), H5Sclose, "dataspace of " + path);
    check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
          "selecting rows of " + path);
    Handle memorySpace(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, "memory space");
    check(H5Dwrite(dataset, memoryType, memorySpace, fileSpace, H5P_DEFAULT, data), "writing " + path);
}

template <class T>
void appendVector(hid_t file, const std::string& path, hid_t memoryType, const std::vector<T>& values,
                  hsize_t valuesPerRow = 1) {
    appendRows(file, path, memoryType, values.data(), values.size() / valuesPerRow);
}

/// The string width of a column: 0 for variable-length strings (format versions 1 and 2).
size_t stringWidth(hid_t file, const std::string& path) {
    Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose, "the file has no dataset " + path);
    Handle type(H5Dget_type(dataset), H5Tclose, "type of " + path);
    if (H5Tget_class(type) != H5T_STRING)
        throw OpenMMException("the dataset " + path + " does not hold strings; the file is damaged");
    if (H5Tis_variable_str(type) > 0)
        return 0;
    size_t width = H5Tget_size(type);
    if (width == 0 || width > MAX_STRING_BYTES)
        throw OpenMMException("the dataset " + path + " has an impossible string width (" + std::to_string(width) +
                              " bytes); the file is damaged");
    return width;
}

std::vector<std::string> readStrings(hid_t file, const std::string& path, hsize_t start, hsize_t count);

/// Replaces a fixed-length string column by one `width` bytes wide holding the same rows (the old one's space
/// stays in the file: a few doublings of a per-record column).
void widenStrings(hid_t file, const std::string& path, size_t width) {
    std::vector<std::string> rows = readStrings(file, path, 0, numRows(file, path));
    std::string wider = path + ".widened";
    Handle type(fixedStringType(width), H5Tclose, "string type");
    createDataset(file, wider, type, {}, true);
    std::string buffer(rows.size() * width, '\0');
    for (size_t i = 0; i < rows.size(); i++)
        rows[i].copy(&buffer[i * width], rows[i].size());
    appendRows(file, wider, type, buffer.data(), rows.size());
    check(H5Ldelete(file, path.c_str(), H5P_DEFAULT), "replacing " + path);
    check(H5Lmove(file, wider.c_str(), file, path.c_str(), H5P_DEFAULT, H5P_DEFAULT), "replacing " + path);
}

void appendStrings(hid_t file, const std::string& path, const std::vector<std::string>& values) {
    size_t longest = 0;
    for (const std::string& value : values) {
        checkNoNul(value, path);
        longest = std::max(longest, value.size());
    }
    size_t width = stringWidth(file, path);
    if (width == 0) { // a file of format version 1 or 2, resumed: its own kind of strings
        std::vector<const char*> pointers;
        for (const std::string& value : values)
            pointers.push_back(value.c_str());
        Handle type(stringType(), H5Tclose, "string type");
        appendRows(file, path, type, pointers.data(), pointers.size());
        return;
    }
    if (longest > width) {
        width = std::max(longest, std::min(2 * width, MAX_STRING_BYTES));
        widenStrings(file, path, width);
    }
    std::string buffer(values.size() * width, '\0');
    for (size_t i = 0; i < values.size(); i++)
        values[i].copy(&buffer[i * width], values[i].size());
    Handle type(fixedStringType(width), H5Tclose, "string type");
    appendRows(file, path, type, buffer.data(), values.size());
}

/// Refuses to read `bytes` from a dataset that cannot hold them: deflate expands at most 1032:1, and every chunk
/// of this writer's files is written, so a column stores at least 1/1032 of what it holds (a chunk's worth of
/// slack allowed).  A damaged size (a shape of 10^12 rows over a few stored bytes) ends here, before allocating.
void checkStoredBytes(hid_t dataset, const std::string& path, size_t bytes) {
    hsize_t stored = H5Dget_storage_size(dataset);
    size_t chunkBytes = 1 << 20;
    if (bytes > chunkBytes && bytes / 1032 > stored + chunkBytes)
        throw OpenMMException("the dataset " + path + " says it holds " + std::to_string(bytes) +
                              " bytes but stores only " + std::to_string(stored) + "; the file is damaged");
}

/// Reads rows [start, start+count) of a dataset as a flat vector.
template <class T>
std::vector<T> readRows(hid_t file, const std::string& path, hid_t memoryType, hsize_t start, hsize_t count,
                        size_t elementSize = 1) {
    Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose, "the file has no dataset " + path);
    Handle fileSpace(H5Dget_space(dataset), H5Sclose, "dataspace of " + path);
    int rank = H5Sget_simple_extent_ndims(fileSpace);
    std::vector<hsize_t> dims(rank);
    H5Sget_simple_extent_dims(fileSpace, dims.data(), nullptr);
    if (start > dims[0] || count > dims[0] - start) // never start + count: damaged offsets may wrap it around
        throw OpenMMException("the dataset " + path + " has " + std::to_string(dims[0]) +
                              " rows, fewer than its offsets say (" + std::to_string(start + count) +
                              "); the file is damaged");
    hsize_t perRow = 1;
    for (int i = 1; i < rank; i++)
        perRow *= dims[i];
    perRow *= elementSize;
    if (perRow == 0 || count > std::numeric_limits<size_t>::max() / sizeof(T) / perRow)
        throw OpenMMException("the dataset " + path + " has an impossible shape; the file is damaged");
    checkStoredBytes(dataset, path, count * perRow * sizeof(T));
    std::vector<T> values(count * perRow);
    if (count == 0)
        return values;
    std::vector<hsize_t> offset(rank, 0), size = dims;
    offset[0] = start;
    size[0] = count;
    check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, offset.data(), nullptr, size.data(), nullptr),
          "selecting rows of " + path);
    Handle memorySpace(H5Screate_simple(rank, size.data(), nullptr), H5Sclose, "memory space");
    check(H5Dread(dataset, memoryType, memorySpace, fileSpace, H5P_DEFAULT, values.data()), "reading " + path);
    return values;
}

std::vector<std::string> readStrings(hid_t file, const std::string& path, hsize_t start, hsize_t count) {
    size_t width = stringWidth(file, path);
    std::vector<std::string> values;
    if (width == 0) { // format versions 1 and 2
        Handle type(stringType(), H5Tclose, "string type");
        std::vector<char*> pointers = readRows<char*>(file, path, type, start, count);
        for (char* pointer : pointers) {
            values.emplace_back(pointer != nullptr ? pointer : "");
            H5free_memory(pointer);
        }
        return values;
    }
    // In blocks of at most 16 MiB, so that a long column never needs one buffer of its full size.
    Handle type(fixedStringType(width), H5Tclose, "string type");
    hsize_t block = std::max<hsize_t>(1, (16u << 20) / width);
    for (hsize_t first = 0; first < count; first += block) {
        hsize_t rows = std::min(block, count - first);
        std::vector<char> bytes = readRows<char>(file, path, type, start + first, rows, width);
        for (hsize_t i = 0; i < rows; i++) {
            const char* text = bytes.data() + i * width;
            values.emplace_back(text, std::find(text, text + width, '\0') - text);
        }
    }
    return values;
}

long long lastOffset(hid_t file, const std::string& path) {
    hsize_t rows = numRows(file, path);
    return readRows<long long>(file, path, H5T_NATIVE_LLONG, rows - 1, 1)[0];
}

void appendOffset(hid_t file, const std::string& path, long long count) {
    long long next = lastOffset(file, path) + count;
    appendRows(file, path, H5T_NATIVE_LLONG, &next, 1);
}

// ---- the layout -------------------------------------------------------------------------------

void writeAttributes(hid_t file, const DatasetAttributes& attributes) {
    writeStringAttribute(file, "format", DATASET_FORMAT_NAME);
    writeNumberAttribute<long long>(file, "format_version", DATASET_FORMAT_VERSION, H5T_NATIVE_LLONG);
    writeStringAttribute(file, "tool", attributes.tool);
    writeStringAttribute(file, "command_line", attributes.commandLine);
    writeStringAttribute(file, "options_json", attributes.optionsJson);
    writeStringAttribute(file, "force_field", attributes.forceField);
    writeNumberAttribute<double>(file, "temperature_K", attributes.temperatureK, H5T_NATIVE_DOUBLE);
    writeNumberAttribute<double>(file, "timestep_ps", attributes.timestepPs, H5T_NATIVE_DOUBLE);
    writeNumberAttribute<long long>(file, "seed", attributes.seed, H5T_NATIVE_LLONG);
    writeStringAttribute(file, "interaction_forces", attributes.interactionForces);
    std::string names;
    for (const auto& labelSet : attributes.labelSets)
        names += (names.empty() ? "" : ",") + labelSet.first;
    writeStringAttribute(file, "label_sets", names);
}

/// "/labels/NAME", the group of a label set.
std::string labelGroup(const std::string& name) {
    return std::string("/labels/").append(name);
}

/// The label set names of a file (root attribute label_sets; none in format version 1).
std::vector<std::string> labelSetNames(hid_t file) {
    std::vector<std::string> names;
    std::string text = hasAttribute(file, "label_sets") ? readStringAttribute(file, "label_sets") : "";
    size_t start = 0;
    while (start < text.size()) {
        size_t comma = text.find(',', start);
        names.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        start = comma == std::string::npos ? text.size() : comma + 1;
    }
    return names;
}

void checkLabelSetName(const std::string& name) {
    bool valid = !name.empty() && std::all_of(name.begin(), name.end(),
                                              [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
    if (!valid)
        throw OpenMMException("the label set name \"" + name +
                              "\" is not valid; use letters, digits, '_' and '-' (e.g. \"gfn2\")");
}

DatasetAttributes readAttributes(hid_t file, const std::string& path) {
    if (!hasAttribute(file, "format") || readStringAttribute(file, "format") != DATASET_FORMAT_NAME)
        throw OpenMMException("\"" + path + "\" is an HDF5 file but not an openmm-mrl dataset (no format=\"" +
                              DATASET_FORMAT_NAME +
                              "\" attribute); give a file written by mrl-envgen or DatasetReporter");
    long long version = readNumberAttribute<long long>(file, "format_version", H5T_NATIVE_LLONG, -1);
    if (version < DATASET_OLDEST_FORMAT_VERSION || version > DATASET_FORMAT_VERSION)
        throw OpenMMException("\"" + path + "\" has dataset format version " + std::to_string(version) +
                              "; this openmm-mrl reads versions " + std::to_string(DATASET_OLDEST_FORMAT_VERSION) +
                              " to " + std::to_string(DATASET_FORMAT_VERSION) +
                              ": use the openmm-mrl release that wrote it (or a newer one)");
    DatasetAttributes attributes;
    auto text = [&](const char* name) { return hasAttribute(file, name) ? readStringAttribute(file, name) : ""; };
    attributes.tool = text("tool");
    attributes.commandLine = text("command_line");
    attributes.optionsJson = text("options_json");
    attributes.forceField = text("force_field");
    attributes.interactionForces = text("interaction_forces");
    attributes.temperatureK = readNumberAttribute<double>(file, "temperature_K", H5T_NATIVE_DOUBLE, NAN);
    attributes.timestepPs = readNumberAttribute<double>(file, "timestep_ps", H5T_NATIVE_DOUBLE, NAN);
    attributes.seed = readNumberAttribute<long long>(file, "seed", H5T_NATIVE_LLONG, -1);
    for (const std::string& name : labelSetNames(file)) {
        Handle group(H5Gopen2(file, labelGroup(name).c_str(), H5P_DEFAULT), H5Gclose,
                     "\"" + path + "\" lists the label set " + name + " but has no group " + labelGroup(name));
        attributes.labelSets.push_back(
            {name, hasAttribute(group, "method") ? readStringAttribute(group, "method") : ""});
    }
    return attributes;
}

hid_t fileType(ColumnType type) {
    switch (type) {
    case ColumnType::Int8:
        return H5T_STD_I8LE;
    case ColumnType::Int32:
        return H5T_STD_I32LE;
    case ColumnType::Int64:
        return H5T_STD_I64LE;
    case ColumnType::Float32:
        return H5T_IEEE_F32LE;
    case ColumnType::Float64:
        return H5T_IEEE_F64LE;
    case ColumnType::String:
        break;
    }
    return -1;
}

/// Creates the groups and empty datasets of the layout (MRLDatasetLayout.h, docs/dataset.md).
void createLayout(hid_t file, const DatasetAttributes& attributes) {
    writeAttributes(file, attributes);
    std::set<std::string> groups;
    for (const DatasetColumn& column : DATASET_COLUMNS)
        if (groups.insert(column.group).second)
            Handle(
                H5Gcreate2(file, std::string("/").append(column.group).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                H5Gclose, std::string("creating /").append(column.group));
    Handle str(fixedStringType(FIRST_STRING_WIDTH), H5Tclose, "string type");
    for (const DatasetColumn& column : DATASET_COLUMNS) {
        std::string path = std::string("/").append(column.group).append("/").append(column.name);
        std::vector<hsize_t> trailing;
        for (int d : column.rowShape)
            if (d > 0)
                trailing.push_back(d);
        hid_t type = column.type == ColumnType::String ? static_cast<hid_t>(str) : fileType(column.type);
        createDataset(file, path, type, trailing, !column.offset, column.units);
        if (column.offset) {
            long long zero = 0;
            appendRows(file, path, H5T_NATIVE_LLONG, &zero, 1);
        }
    }
    if (!attributes.labelSets.empty())
        Handle(H5Gcreate2(file, "/labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "creating /labels");
    for (const auto& [name, method] : attributes.labelSets) {
        checkLabelSetName(name);
        Handle group(H5Gcreate2(file, labelGroup(name).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                     "creating " + labelGroup(name));
        writeStringAttribute(group, "method", method);
        for (const DatasetColumn& column : LABEL_SET_COLUMNS) {
            std::vector<hsize_t> trailing;
            for (int d : column.rowShape)
                if (d > 0)
                    trailing.push_back(d);
            createDataset(file, labelGroup(name) + "/" + column.name, fileType(column.type), trailing, true,
                          column.units);
        }
    }
}

std::string joinNames(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names)
        text += (text.empty() ? "" : ", ") + name;
    return text;
}

void appendRecord(hid_t file, const DatasetRecord& record) {
    record.validate();
    int atoms = record.numAtoms(), frames = record.numFrames();
    appendStrings(file, "/records/key", {record.key});
    appendStrings(file, "/records/pair_id", {record.pairId});
    appendRows(file, "/records/weight", H5T_NATIVE_DOUBLE, &record.weight, 1);
    appendRows(file, "/records/central_molecule", H5T_NATIVE_INT, &record.centralMolecule, 1);
    appendOffset(file, "/records/atom_offset", atoms);
    appendOffset(file, "/records/molecule_offset", record.numMolecules());
    appendOffset(file, "/records/bond_offset", static_cast<long long>(record.bonds.size()));
    appendOffset(file, "/records/frame_offset", frames);
    appendVector(file, "/atoms/atomic_number", H5T_NATIVE_INT, record.atomicNumbers);
    appendVector(file, "/atoms/formal_charge", H5T_NATIVE_INT, record.formalCharges);
    appendVector(file, "/atoms/molecule_index", H5T_NATIVE_INT, record.moleculeIndex);
    appendVector(file, "/atoms/anchor", H5T_NATIVE_INT, record.anchor);
    appendStrings(file, "/molecules/smiles", record.smiles);
    appendStrings(file, "/molecules/name", record.moleculeNames);
    std::vector<signed char> central(record.isCentral.begin(), record.isCentral.end());
    appendVector(file, "/molecules/is_central", H5T_NATIVE_SCHAR, central);
    appendRows(file, "/bonds/index", H5T_NATIVE_INT, record.bonds.data(), record.bonds.size());
    appendVector(file, "/bonds/order", H5T_NATIVE_FLOAT, record.bondOrders);
    appendVector(file, "/frames/time", H5T_NATIVE_DOUBLE, record.timePs);
    appendVector(file, "/frames/box", H5T_NATIVE_FLOAT, record.boxNm, 9);
    appendVector(file, "/frames/total_energy", H5T_NATIVE_DOUBLE, record.totalEnergyKJPerMol);
    appendVector(file, "/frames/interaction_energy", H5T_NATIVE_DOUBLE, record.interactionEnergyKJPerMol);
    long long last = lastOffset(file, "/frames/atom_offset");
    std::vector<long long> offsets(frames);
    for (int f = 0; f < frames; f++)
        offsets[f] = last + static_cast<long long>(f + 1) * atoms;
    appendVector(file, "/frames/atom_offset", H5T_NATIVE_LLONG, offsets);
    appendVector(file, "/frame_atoms/positions", H5T_NATIVE_FLOAT, record.positionsNm, 3);
    appendVector(file, "/frame_atoms/total_forces", H5T_NATIVE_FLOAT, record.totalForcesKJPerMolNm, 3);
    appendVector(file, "/frame_atoms/interaction_forces", H5T_NATIVE_FLOAT, record.interactionForcesKJPerMolNm, 3);
    appendVector(file, "/frame_atoms/direction_3dmrl", H5T_NATIVE_FLOAT, record.direction3DMRL, 3);
    std::vector<std::string> names = labelSetNames(file);
    std::vector<std::string> given;
    for (const LabelSet& labels : record.labelSets)
        given.push_back(labels.name);
    if (given != names)
        throw OpenMMException("dataset record \"" + record.key + "\" has the label sets [" + joinNames(given) +
                              "] but the file has [" + joinNames(names) +
                              "]; every record carries the file's label sets");
    for (const LabelSet& labels : record.labelSets) {
        std::string group = labelGroup(labels.name);
        appendVector(file, group + "/total_energy", H5T_NATIVE_DOUBLE, labels.totalEnergyKJPerMol);
        appendVector(file, group + "/interaction_energy", H5T_NATIVE_DOUBLE, labels.interactionEnergyKJPerMol);
        appendVector(file, group + "/total_forces", H5T_NATIVE_FLOAT, labels.totalForcesKJPerMolNm, 3);
        appendVector(file, group + "/interaction_forces", H5T_NATIVE_FLOAT, labels.interactionForcesKJPerMolNm, 3);
    }
}

void appendSkip(hid_t file, const SkippedInput& skipped) {
    appendStrings(file, "/skipped/key", {skipped.key});
    appendStrings(file, "/skipped/pair_id", {skipped.pairId});
    appendStrings(file, "/skipped/reason", {skipped.reason});
}

/// Record r of an open file.
DatasetRecord readRecord(hid_t file, int r) {
    auto offsets = [&](const char* name) {
        return readRows<long long>(file, std::string("/records/") + name, H5T_NATIVE_LLONG, r, 2);
    };
    std::vector<long long> atom = offsets("atom_offset"), molecule = offsets("molecule_offset"),
                           bond = offsets("bond_offset"), frame = offsets("frame_offset");
    DatasetRecord record;
    record.key = readStrings(file, "/records/key", r, 1)[0];
    record.pairId = readStrings(file, "/records/pair_id", r, 1)[0];
    record.weight = readRows<double>(file, "/records/weight", H5T_NATIVE_DOUBLE, r, 1)[0];
    record.centralMolecule = readRows<int>(file, "/records/central_molecule", H5T_NATIVE_INT, r, 1)[0];
    hsize_t a0 = atom[0], na = atom[1] - atom[0];
    record.atomicNumbers = readRows<int>(file, "/atoms/atomic_number", H5T_NATIVE_INT, a0, na);
    record.formalCharges = readRows<int>(file, "/atoms/formal_charge", H5T_NATIVE_INT, a0, na);
    record.moleculeIndex = readRows<int>(file, "/atoms/molecule_index", H5T_NATIVE_INT, a0, na);
    record.anchor = readRows<int>(file, "/atoms/anchor", H5T_NATIVE_INT, a0, na);
    hsize_t m0 = molecule[0], nm = molecule[1] - molecule[0];
    record.smiles = readStrings(file, "/molecules/smiles", m0, nm);
    record.moleculeNames = readStrings(file, "/molecules/name", m0, nm);
    std::vector<signed char> central = readRows<signed char>(file, "/molecules/is_central", H5T_NATIVE_SCHAR, m0, nm);
    record.isCentral.assign(central.begin(), central.end());
    std::vector<int> bonds = readRows<int>(file, "/bonds/index", H5T_NATIVE_INT, bond[0], bond[1] - bond[0]);
    for (size_t b = 0; b + 1 < bonds.size(); b += 2)
        record.bonds.push_back({bonds[b], bonds[b + 1]});
    record.bondOrders = readRows<float>(file, "/bonds/order", H5T_NATIVE_FLOAT, bond[0], bond[1] - bond[0]);
    hsize_t f0 = frame[0], nf = frame[1] - frame[0];
    record.timePs = readRows<double>(file, "/frames/time", H5T_NATIVE_DOUBLE, f0, nf);
    record.boxNm = readRows<float>(file, "/frames/box", H5T_NATIVE_FLOAT, f0, nf);
    record.totalEnergyKJPerMol = readRows<double>(file, "/frames/total_energy", H5T_NATIVE_DOUBLE, f0, nf);
    record.interactionEnergyKJPerMol = readRows<double>(file, "/frames/interaction_energy", H5T_NATIVE_DOUBLE, f0, nf);
    std::vector<long long> frameAtoms = readRows<long long>(file, "/frames/atom_offset", H5T_NATIVE_LLONG, f0, nf + 1);
    hsize_t fa0 = frameAtoms.front(), nfa = frameAtoms.back() - frameAtoms.front();
    if (nfa != nf * na)
        throw OpenMMException("record " + record.key + " has " + std::to_string(nfa) +
                              " frame atoms, not frames × atoms = " + std::to_string(nf * na) +
                              "; the file is damaged");
    record.positionsNm = readRows<float>(file, "/frame_atoms/positions", H5T_NATIVE_FLOAT, fa0, nfa);
    record.totalForcesKJPerMolNm = readRows<float>(file, "/frame_atoms/total_forces", H5T_NATIVE_FLOAT, fa0, nfa);
    record.interactionForcesKJPerMolNm =
        readRows<float>(file, "/frame_atoms/interaction_forces", H5T_NATIVE_FLOAT, fa0, nfa);
    record.direction3DMRL = readRows<float>(file, "/frame_atoms/direction_3dmrl", H5T_NATIVE_FLOAT, fa0, nfa);
    for (const std::string& name : labelSetNames(file)) {
        LabelSet labels;
        labels.name = name;
        std::string group = labelGroup(name);
        labels.totalEnergyKJPerMol = readRows<double>(file, group + "/total_energy", H5T_NATIVE_DOUBLE, f0, nf);
        labels.interactionEnergyKJPerMol =
            readRows<double>(file, group + "/interaction_energy", H5T_NATIVE_DOUBLE, f0, nf);
        labels.totalForcesKJPerMolNm = readRows<float>(file, group + "/total_forces", H5T_NATIVE_FLOAT, fa0, nfa);
        labels.interactionForcesKJPerMolNm =
            readRows<float>(file, group + "/interaction_forces", H5T_NATIVE_FLOAT, fa0, nfa);
        record.labelSets.push_back(std::move(labels));
    }
    record.validate(); // indices into the record (molecules, bonds) are used unchecked by the tools
    return record;
}

std::vector<SkippedInput> readSkips(hid_t file) {
    hsize_t rows = numRows(file, "/skipped/key");
    std::vector<std::string> keys = readStrings(file, "/skipped/key", 0, rows);
    std::vector<std::string> pairs = readStrings(file, "/skipped/pair_id", 0, rows);
    std::vector<std::string> reasons = readStrings(file, "/skipped/reason", 0, rows);
    std::vector<SkippedInput> skipped;
    for (hsize_t i = 0; i < rows; i++)
        skipped.push_back({keys[i], pairs[i], reasons[i]});
    return skipped;
}

std::vector<std::string> readKeys(hid_t file) {
    return readStrings(file, "/records/key", 0, numRows(file, "/records/key"));
}

/**
 * Runs `read` on the file at `path` and names the file in what it throws: a damaged file (truncated, bytes
 * changed) shows itself as an HDF5 read error, offsets that disagree with the tables, or an impossible size.
 */
template <class Read> auto readNamingTheFile(const std::string& path, const std::string& advice, Read read) {
    try {
        return read();
    } catch (const OpenMMException& e) {
        std::string message = e.what();
        if (message.find(path) != std::string::npos)
            throw;
        throw OpenMMException("\"" + path + "\" is damaged or incomplete (" + message + "); " + advice);
    } catch (const std::bad_alloc&) {
        throw OpenMMException("\"" + path + "\" is damaged or incomplete (a size in it is impossibly large); " +
                              advice);
    } catch (const std::length_error&) {
        throw OpenMMException("\"" + path + "\" is damaged or incomplete (a size in it is impossibly large); " +
                              advice);
    }
}

const char* READ_ADVICE = "restore it from a copy or write it again";

hid_t openFile(const std::string& path, unsigned flags) {
    silenceHdf5();
    if (!fs::exists(path))
        throw OpenMMException("the dataset file \"" + path + "\" does not exist; check the path");
    hid_t file = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
    if (file < 0)
        throw OpenMMException(
            "\"" + path + "\" is not a readable HDF5 file; give a dataset written by mrl-envgen or DatasetReporter");
    return file;
}

/// Creates a new file with the layout at `path` (truncating) and returns it open.
hid_t createFile(const std::string& path, const DatasetAttributes& attributes) {
    silenceHdf5();
    // The file format of HDF5 1.10 and later: every piece of metadata (superblock, object headers, chunk
    // indexes) carries a checksum, so that damaged metadata is an error rather than a wrong structure.
    Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "file access properties");
    check(H5Pset_libver_bounds(access, H5F_LIBVER_V110, H5F_LIBVER_LATEST), "file format bounds");
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access);
    if (file < 0)
        throw OpenMMException("cannot create \"" + path + "\"; check that its directory exists and is writable");
    try {
        createLayout(file, attributes);
    } catch (...) {
        H5Fclose(file);
        throw;
    }
    return file;
}

void closeFile(hid_t file, const std::string& path) {
    if (H5Fclose(file) < 0)
        throw OpenMMException("HDF5 error: closing \"" + path + "\" failed (disk full?)");
}

/// Writes a complete file with `fill` to `path`.tmp, fsyncs it and renames it to `path`.
void writeAtomically(const std::string& path, const std::function<hid_t(const std::string&)>& open,
                     const std::function<void(hid_t)>& fill, const char* crashPoint = nullptr) {
    std::string temporary = path + ".tmp";
    hid_t file = open(temporary);
    try {
        fill(file);
    } catch (...) {
        H5Fclose(file);
        fs::remove(temporary);
        throw;
    }
    closeFile(file, temporary);
    fsyncPath(temporary);
    if (crashPoint != nullptr)
        crashIfAt(crashPoint);
    fs::rename(temporary, path);
    fsyncPath(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string());
}

std::string journalName(const std::string& key) {
    std::string name;
    for (char c : key)
        name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
    // Keys that differ only in replaced characters still get distinct names.
    unsigned long long hash = 1469598103934665603ull;
    for (unsigned char c : key)
        hash = (hash ^ c) * 1099511628211ull;
    char suffix[20];
    std::snprintf(suffix, sizeof(suffix), "-%08llx", hash & 0xffffffffull);
    return name + suffix;
}

} // namespace

void fsyncPath(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0)
        return;
    ::fsync(fd);
    ::close(fd);
}

void DatasetRecord::validate() const {
    auto fail = [&](const std::string& what) { throw OpenMMException("dataset record \"" + key + "\": " + what); };
    size_t atoms = numAtoms(), frames = numFrames(), molecules = numMolecules();
    if (formalCharges.size() != atoms || moleculeIndex.size() != atoms || anchor.size() != atoms)
        fail("formal charges, molecule indices and anchors need one entry per atom (" + std::to_string(atoms) + ")");
    if (moleculeNames.size() != molecules || isCentral.size() != molecules)
        fail("SMILES, names and is_central need one entry per molecule (" + std::to_string(molecules) + ")");
    for (int m : moleculeIndex)
        if (m < 0 || m >= static_cast<int>(molecules))
            fail("molecule index " + std::to_string(m) + " is outside [0, " + std::to_string(molecules) + ")");
    if (centralMolecule < -1 || centralMolecule >= static_cast<int>(std::max<size_t>(molecules, 1)))
        fail("the central molecule index is out of range (-1 means none)");
    if (bondOrders.size() != bonds.size())
        fail("bond orders need one entry per bond");
    for (auto& bond : bonds)
        if (bond[0] < 0 || bond[1] < 0 || bond[0] >= static_cast<int>(atoms) || bond[1] >= static_cast<int>(atoms))
            fail("a bond refers to an atom outside the record");
    if (totalEnergyKJPerMol.size() != frames || interactionEnergyKJPerMol.size() != frames ||
        boxNm.size() != 9 * frames)
        fail("energies need one value per frame and the box 9 per frame");
    size_t perFrame = 3 * atoms * frames;
    if (positionsNm.size() != perFrame || totalForcesKJPerMolNm.size() != perFrame ||
        interactionForcesKJPerMolNm.size() != perFrame || direction3DMRL.size() != perFrame)
        fail("positions, forces and directions need frames × atoms × 3 values (" + std::to_string(perFrame) + ")");
    for (const LabelSet& labels : labelSets)
        if (labels.totalEnergyKJPerMol.size() != frames || labels.interactionEnergyKJPerMol.size() != frames ||
            labels.totalForcesKJPerMolNm.size() != perFrame || labels.interactionForcesKJPerMolNm.size() != perFrame)
            fail("the label set " + labels.name + " needs one energy per frame and frames × atoms × 3 force values");
}

// ---- reader -----------------------------------------------------------------------------------

DatasetReader::DatasetReader(const std::string& path) : path(path) {
    file = openFile(path, H5F_ACC_RDONLY);
    try {
        attributes = readNamingTheFile(path, READ_ADVICE, [&] { return readAttributes(file, path); });
        keys = readNamingTheFile(path, READ_ADVICE, [&] { return readKeys(file); });
    } catch (...) {
        H5Fclose(file);
        throw;
    }
}

DatasetReader::~DatasetReader() {
    if (file >= 0)
        H5Fclose(file);
}

DatasetRecord DatasetReader::getRecord(int r) const {
    if (r < 0 || r >= getNumRecords())
        throw OpenMMException("record " + std::to_string(r) + " is outside [0, " + std::to_string(getNumRecords()) +
                              ")");
    return readNamingTheFile(path, READ_ADVICE, [&] { return readRecord(file, r); });
}

static std::vector<long long> countsFromOffsets(hid_t file, const char* path) {
    std::vector<long long> offsets = readRows<long long>(file, path, H5T_NATIVE_LLONG, 0, numRows(file, path));
    std::vector<long long> counts;
    for (size_t i = 0; i + 1 < offsets.size(); i++)
        counts.push_back(offsets[i + 1] - offsets[i]);
    return counts;
}

std::vector<long long> DatasetReader::getFrameCounts() const {
    return readNamingTheFile(path, READ_ADVICE, [&] { return countsFromOffsets(file, "/records/frame_offset"); });
}

std::vector<long long> DatasetReader::getAtomCounts() const {
    return readNamingTheFile(path, READ_ADVICE, [&] { return countsFromOffsets(file, "/records/atom_offset"); });
}

std::vector<SkippedInput> DatasetReader::getSkipped() const {
    return readNamingTheFile(path, READ_ADVICE, [&] { return readSkips(file); });
}

// ---- writer -----------------------------------------------------------------------------------

namespace {

const char* RESUME_ADVICE = "it was left as it is; restore it from a copy, give a new output file, or replace it "
                            "(mrl-envgen --overwrite, Python overwrite=True)";

std::string optionsMismatch(const std::string& what, const std::string& existing, const std::string& mine) {
    return what +
           " was made with other options than this run (a resumed run needs the same options; different options:\n"
           "  there: " +
           existing + "\n  now:   " + mine +
           "\n); give a new output file, or replace the file (mrl-envgen --overwrite, Python overwrite=True)";
}

/// One finished entry of a journal: a record or a skip, its key, and the journal file that holds it.
struct JournalItem {
    std::string key;
    fs::path entry;
    bool isRecord;
    bool operator<(const JournalItem& other) const {
        return key != other.key ? key < other.key : isRecord > other.isRecord;
    }
};

/// Every finished journal entry, sorted by key (records before skips of the same key).  Throws when an entry
/// was written with other options than `optionsJson`: it belongs to another run.
std::vector<JournalItem> readJournal(const std::string& journal, const std::string& optionsJson) {
    std::vector<JournalItem> items;
    if (!fs::is_directory(journal))
        return items;
    for (const auto& file : fs::directory_iterator(journal)) {
        if (file.path().extension() != ".h5")
            continue;
        std::string entry = file.path().string();
        hid_t source = openFile(entry, H5F_ACC_RDONLY);
        try {
            DatasetAttributes attributes = readAttributes(source, entry);
            if (attributes.optionsJson != optionsJson)
                throw OpenMMException(
                    optionsMismatch("the journal entry \"" + entry + "\"", attributes.optionsJson, optionsJson));
            for (const std::string& key : readKeys(source))
                items.push_back({key, file.path(), true});
            for (const SkippedInput& skipped : readSkips(source))
                items.push_back({skipped.key, file.path(), false});
        } catch (...) {
            H5Fclose(source);
            throw;
        }
        H5Fclose(source);
    }
    std::sort(items.begin(), items.end());
    return items;
}

/// Appends the journal item to an open file, reading it from its entry.
void appendItem(hid_t file, const JournalItem& item) {
    hid_t source = openFile(item.entry.string(), H5F_ACC_RDONLY);
    try {
        if (item.isRecord) {
            std::vector<std::string> keys = readKeys(source);
            int r = static_cast<int>(std::find(keys.begin(), keys.end(), item.key) - keys.begin());
            appendRecord(file, readRecord(source, r));
        } else {
            for (const SkippedInput& skipped : readSkips(source))
                if (skipped.key == item.key) {
                    appendSkip(file, skipped);
                    break;
                }
        }
    } catch (...) {
        H5Fclose(source);
        throw;
    }
    H5Fclose(source);
}

/// The keys of records and skips in an open file.
std::set<std::string> keysIn(hid_t file) {
    std::set<std::string> keys;
    for (const std::string& key : readKeys(file))
        keys.insert(key);
    for (const SkippedInput& skipped : readSkips(file))
        keys.insert(skipped.key);
    return keys;
}

} // namespace

DatasetWriter::DatasetWriter(const std::string& path, const DatasetAttributes& attributes, bool overwrite,
                             long long foldBytes)
    : path(path), journal(path + ".journal"), attributes(attributes), foldBytes(foldBytes) {
    silenceHdf5();
    fs::path directory = fs::path(path).parent_path();
    if (!directory.empty() && !fs::is_directory(directory))
        throw OpenMMException("cannot write \"" + path + "\": the directory " + directory.string() +
                              " does not exist; create it first");
    if (overwrite) {
        fs::remove(path);
        fs::remove_all(journal);
    }
    fs::remove(path + ".tmp"); // a fold cut off before its rename: the file is still the last complete version
    if (fs::is_directory(journal))
        for (const auto& entry : fs::directory_iterator(journal))
            if (entry.path().extension() == ".tmp")
                fs::remove(entry.path()); // cut off before its rename: never part of the dataset
    if (fs::exists(path)) {
        hid_t file = openFile(path, H5F_ACC_RDONLY);
        try {
            DatasetAttributes existing =
                readNamingTheFile(path, RESUME_ADVICE, [&] { return readAttributes(file, path); });
            if (existing.optionsJson != attributes.optionsJson)
                throw OpenMMException(
                    optionsMismatch("\"" + path + "\"", existing.optionsJson, attributes.optionsJson));
            if (existing.labelSets != attributes.labelSets)
                throw OpenMMException("\"" + path + "\" has other label sets (or methods) than this run; give a new " +
                                      "output file, or replace it (mrl-envgen --overwrite, Python overwrite=True)");
            // A resumed run appends to the file: read all of it once (as a fold copies all of it), so that a
            // damaged file is refused before anything is written rather than carried into the next version.
            readNamingTheFile(path, RESUME_ADVICE, [&] {
                done = keysIn(file);
                for (hsize_t r = 0, n = numRows(file, "/records/key"); r < n; r++)
                    readRecord(file, static_cast<int>(r));
            });
        } catch (...) {
            H5Fclose(file);
            throw;
        }
        H5Fclose(file);
    } else {
        // A journal without its file (killed before the file was first written, or the file deleted) still
        // holds finished records: check that it belongs to this run before anything is written.
        readJournal(journal, attributes.optionsJson);
        writeAtomically(
            path, [&](const std::string& p) { return createFile(p, attributes); }, [](hid_t) {});
    }
    fold();
}

DatasetWriter::~DatasetWriter() {
    try {
        fold();
        fs::remove(journal); // only when empty
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warning: could not fold the journal of %s: %s (rerun to fold it)\n", path.c_str(),
                     e.what());
    }
}

std::vector<std::string> DatasetWriter::getKeys() const {
    return std::vector<std::string>(done.begin(), done.end());
}

void DatasetWriter::addRecord(const DatasetRecord& record) {
    record.validate();
    if (done.count(record.key))
        throw OpenMMException("the key \"" + record.key + "\" is already in \"" + path +
                              "\" (or its journal); check contains(key) before adding, or use a unique key");
    journalEntry(record.key, journalName(record.key), [&](hid_t file) { appendRecord(file, record); });
}

void DatasetWriter::addSkipped(const SkippedInput& skipped) {
    if (done.count(skipped.key))
        throw OpenMMException("the key \"" + skipped.key + "\" is already in \"" + path +
                              "\" (or its journal); check contains(key) before adding, or use a unique key");
    journalEntry(skipped.key, "skip-" + journalName(skipped.key), [&](hid_t file) { appendSkip(file, skipped); });
}

// One journal file per entry (written to a temporary, synced and renamed), then fold when the journal is big.
static_assert(std::is_same_v<hid_t, int64_t>, "HDF5's hid_t is a 64-bit integer");
void DatasetWriter::journalEntry(const std::string& key, const std::string& name,
                                 const std::function<void(int64_t)>& append) {
    if (key.empty() || key.find('\0') != std::string::npos)
        throw OpenMMException("a dataset key must be a non-empty string without NUL characters");
    std::string entry = (fs::path(journal) / (name + ".h5")).string();
    fs::create_directories(journal);
    writeAtomically(
        entry, [&](const std::string& p) { return createFile(p, attributes); }, append);
    journalBytes += static_cast<long long>(fs::file_size(entry));
    done.insert(key);
    maybeFold();
}

void DatasetWriter::maybeFold() {
    long long mainBytes = fs::exists(path) ? static_cast<long long>(fs::file_size(path)) : 0;
    if (journalBytes >= std::max<long long>(foldBytes, mainBytes / 4))
        fold();
}

void DatasetWriter::fold() {
    std::vector<JournalItem> items = readJournal(journal, attributes.optionsJson);
    std::set<fs::path> entries;
    for (const JournalItem& item : items)
        entries.insert(item.entry);
    if (entries.empty())
        return;
    std::set<std::string> present;
    {
        hid_t file = openFile(path, H5F_ACC_RDONLY);
        present = keysIn(file);
        H5Fclose(file);
    }
    bool anyNew =
        std::any_of(items.begin(), items.end(), [&](const JournalItem& item) { return !present.count(item.key); });
    if (anyNew) {
        std::string temporary = path + ".tmp";
        fs::copy_file(path, temporary, fs::copy_options::overwrite_existing);
        if (crashesAt("mid-copy")) {
            fs::resize_file(temporary, fs::file_size(temporary) / 2);
            crashIfAt("mid-copy");
        }
        writeAtomically(
            path, [&](const std::string& p) { return openFile(p, H5F_ACC_RDWR); },
            [&](hid_t file) {
                for (const JournalItem& item : items)
                    if (present.insert(item.key).second)
                        appendItem(file, item);
            },
            "before-rename");
    }
    done.insert(present.begin(), present.end());
    int deleted = 0;
    for (const fs::path& entry : entries) {
        fs::remove(entry);
        if (++deleted == 1)
            crashIfAt("mid-delete");
    }
    std::error_code notEmpty;
    fs::remove(journal, notEmpty); // only when empty (a .tmp of another writer stays)
    journalBytes = 0;
}

void mergeDatasets(const std::vector<std::string>& inputs, const std::string& output, const std::string& commandLine) {
    if (inputs.empty())
        throw OpenMMException("merge needs at least one input dataset");
    for (const std::string& input : inputs)
        if (fs::exists(input + ".journal") && !fs::is_empty(input + ".journal"))
            throw OpenMMException(
                "\"" + input +
                "\" has an unfolded journal (its run was interrupted); rerun that run to finish it before merging");
    DatasetAttributes attributes = DatasetReader(inputs[0]).getAttributes();
    attributes.commandLine = commandLine;
    writeAtomically(
        output, [&](const std::string& p) { return createFile(p, attributes); },
        [&](hid_t file) {
            std::set<std::string> keys;
            for (const std::string& input : inputs) {
                DatasetReader reader(input);
                for (int r = 0; r < reader.getNumRecords(); r++) {
                    DatasetRecord record = reader.getRecord(r);
                    if (!keys.insert(record.key).second)
                        throw OpenMMException("the key \"" + record.key + "\" of \"" + input +
                                              "\" is already in an earlier input; merge each shard once");
                    appendRecord(file, record);
                }
                for (const SkippedInput& skipped : reader.getSkipped())
                    if (keys.insert(skipped.key).second)
                        appendSkip(file, skipped);
            }
        });
}

} // namespace MRLPlugin
