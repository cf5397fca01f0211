// SPDX-License-Identifier: MIT
// openmmmrl.dataset_core: the C++ dataset writer (tools/src/Dataset.cpp, the only one) and the layout table
// (tools/include/MRLDatasetLayout.h) for Python.  It needs neither RDKit nor the MRLForce plugin; the
// Python API on top of it is openmmmrl.data.DatasetWriter.  C++ errors arrive as ValueError with the
// same text.
%module(package="openmmmrl") dataset_core

%{
#include <algorithm>
#include <cstring>
#include <map>

#include "MRLDataset.h"
#include "MRLDatasetLayout.h"
using namespace MRLPlugin;
%}

%include "std_string.i"
%include "std_vector.i"
%include "pybuffer.i"
%template(StringVector) std::vector<std::string>;

%exception {
    try {
        $action
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
        SWIG_fail;
    }
}

// Array fields arrive as any object with the buffer protocol (a C-contiguous numpy array): one memcpy.
%pybuffer_binary(char* data, size_t length);

namespace MRLPlugin {

struct DatasetAttributes {
    std::string tool, commandLine, optionsJson, forceField;
    double temperatureK, timestepPs;
    long long seed;
    std::string interactionForces;
};

%extend DatasetAttributes {
    /// Adds a label set (format version 2) to the attributes of a new file: its name and its method.
    void addLabelSet(const std::string& name, const std::string& method) { $self->labelSets.push_back({name, method}); }
}

struct SkippedInput {
    std::string key, pairId, reason;
};

struct DatasetRecord {
    std::string key, pairId;
    double weight;
    int centralMolecule;
    std::vector<std::string> smiles, moleculeNames;
    int numAtoms() const;
    int numFrames() const;
    void validate() const;
};

class DatasetWriter {
public:
    DatasetWriter(const std::string& path, const DatasetAttributes& attributes, bool overwrite, long long foldBytes);
    ~DatasetWriter();
    bool contains(const std::string& key) const;
    std::vector<std::string> getKeys() const;
    void addRecord(const DatasetRecord& record);
    void addSkipped(const SkippedInput& skipped);
    void fold();
    const std::string& getPath() const;
};

} // namespace MRLPlugin

%extend MRLPlugin::DatasetRecord {
    /// Sets one array field from a C-contiguous numpy array (or bytes) of the field's dtype: int32 for
    /// atomicNumbers, formalCharges, moleculeIndex, anchor, isCentral, bonds (pairs); float64 for timePs,
    /// totalEnergyKJPerMol, interactionEnergyKJPerMol; float32 for bondOrders, boxNm, positionsNm,
    /// totalForcesKJPerMolNm, interactionForcesKJPerMolNm, direction3DMRL; and "labels/NAME/FIELD" for a label
    /// set's total_energy, interaction_energy (float64), total_forces, interaction_forces (float32).
    void setArray(const std::string& field, char* data, size_t length) {
        auto copy = [&](auto& vector) {
            using T = typename std::decay_t<decltype(vector)>::value_type;
            if (length % sizeof(T) != 0)
                throw std::invalid_argument("the bytes of " + field + " are not a whole number of values");
            vector.resize(length / sizeof(T));
            if (length > 0)
                std::memcpy(vector.data(), data, length);
        };
        std::map<std::string, std::vector<int>*> ints = {
            {"atomicNumbers", &$self->atomicNumbers}, {"formalCharges", &$self->formalCharges},
            {"moleculeIndex", &$self->moleculeIndex}, {"anchor", &$self->anchor}, {"isCentral", &$self->isCentral}};
        std::map<std::string, std::vector<double>*> doubles = {{"timePs", &$self->timePs},
                                                               {"totalEnergyKJPerMol", &$self->totalEnergyKJPerMol},
                                                               {"interactionEnergyKJPerMol", &$self->interactionEnergyKJPerMol}};
        std::map<std::string, std::vector<float>*> floats = {
            {"bondOrders", &$self->bondOrders}, {"boxNm", &$self->boxNm}, {"positionsNm", &$self->positionsNm},
            {"totalForcesKJPerMolNm", &$self->totalForcesKJPerMolNm},
            {"interactionForcesKJPerMolNm", &$self->interactionForcesKJPerMolNm},
            {"direction3DMRL", &$self->direction3DMRL}};
        if (field.rfind("labels/", 0) == 0) {
            // labels/NAME/FIELD: a label set's array; the label set is added on first use.
            size_t slash = field.find('/', 7);
            std::string name = field.substr(7, slash - 7), what = slash == std::string::npos ? "" : field.substr(slash + 1);
            auto found = std::find_if($self->labelSets.begin(), $self->labelSets.end(),
                                      [&](const LabelSet& labels) { return labels.name == name; });
            if (found == $self->labelSets.end()) {
                $self->labelSets.push_back(LabelSet());
                $self->labelSets.back().name = name;
                found = $self->labelSets.end() - 1;
            }
            if (what == "total_energy")
                copy(found->totalEnergyKJPerMol);
            else if (what == "interaction_energy")
                copy(found->interactionEnergyKJPerMol);
            else if (what == "total_forces")
                copy(found->totalForcesKJPerMolNm);
            else if (what == "interaction_forces")
                copy(found->interactionForcesKJPerMolNm);
            else
                throw std::invalid_argument("a label set has no array " + what);
        } else if (ints.count(field))
            copy(*ints[field]);
        else if (doubles.count(field))
            copy(*doubles[field]);
        else if (floats.count(field))
            copy(*floats[field]);
        else if (field == "bonds") {
            std::vector<int> flat;
            copy(flat);
            $self->bonds.resize(flat.size() / 2);
            for (size_t b = 0; b < $self->bonds.size(); b++)
                $self->bonds[b] = {flat[2 * b], flat[2 * b + 1]};
        } else
            throw std::invalid_argument("DatasetRecord has no array field " + field);
    }
}

%inline %{
/// The dataset format name and version this build writes and reads.
const char* formatName() { return MRLPlugin::DATASET_FORMAT_NAME; }
int formatVersion() { return MRLPlugin::DATASET_FORMAT_VERSION; }
int oldestFormatVersion() { return MRLPlugin::DATASET_OLDEST_FORMAT_VERSION; }
long long foldMinBytes() { return MRLPlugin::DATASET_FOLD_MIN_BYTES; }

/// The layout table: one (group, name, dtype, row shape, offset, units) tuple per HDF5 dataset; dtype is a
/// numpy dtype name ("str" for variable-length UTF-8 strings), units "" for none.  With labelSets, the
/// datasets of one label set, group "labels/NAME".
PyObject* layout(bool labelSets = false) {
    static const char* names[] = {"int8", "int32", "int64", "float32", "float64", "str"};
    PyObject* rows = PyList_New(0);
    const MRLPlugin::DatasetColumn* begin = labelSets ? std::begin(MRLPlugin::LABEL_SET_COLUMNS) : std::begin(MRLPlugin::DATASET_COLUMNS);
    const MRLPlugin::DatasetColumn* end = labelSets ? std::end(MRLPlugin::LABEL_SET_COLUMNS) : std::end(MRLPlugin::DATASET_COLUMNS);
    for (const MRLPlugin::DatasetColumn* c = begin; c != end; ++c) {
        const MRLPlugin::DatasetColumn& column = *c;
        PyObject* shape = PyTuple_New(0);
        for (int d : column.rowShape)
            if (d > 0) {
                _PyTuple_Resize(&shape, PyTuple_GET_SIZE(shape) + 1);
                PyTuple_SET_ITEM(shape, PyTuple_GET_SIZE(shape) - 1, PyLong_FromLong(d));
            }
        PyObject* row = Py_BuildValue("(ssNNOs)", column.group, column.name,
                                      PyUnicode_FromString(names[static_cast<int>(column.type)]), shape,
                                      column.offset ? Py_True : Py_False, column.units ? column.units : "");
        PyList_Append(rows, row);
        Py_DECREF(row);
    }
    return rows;
}
%}
