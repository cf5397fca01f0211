// SPDX-License-Identifier: MIT
// SWIG wrappers of MRLForce.  The OpenMM wheel's own SWIG declarations are imported so that an MRLForce
// is an openmm.Force for System.addForce, XmlSerializer and Simulation.
%module(package="openmmmrl") mrlforce

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include <std_string.i>

%{
#include "MRLForce.h"
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
#include <map>
#include <string>
#include <vector>
%}

%pythoncode %{
import io as _io
import os as _os
import sys as _sys


def _model_arguments(args):
    """Turn what a user passes to MRLForce (a path, bytes or a ScriptModule) into a C++ constructor argument."""
    if len(args) != 1:
        raise TypeError("MRLForce takes one argument: a model file path, the model's bytes, or a "
                        "torch.jit.ScriptModule (got %d arguments)" % len(args))
    model = args[0]
    if isinstance(model, (bytes, bytearray, memoryview)):
        return (bytes(model),)
    if isinstance(model, (str, _os.PathLike)):
        return (_os.fspath(model),)
    torch = _sys.modules.get("torch")
    if torch is not None:
        if isinstance(model, torch.jit.ScriptModule):
            import warnings
            buffer = _io.BytesIO()
            with warnings.catch_warnings():  # torch's deprecation notice of torch.jit.save
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(model, buffer)
            return (buffer.getvalue(),)
        if isinstance(model, torch.nn.Module):
            raise TypeError("MRLForce needs a TorchScript module, not a plain torch.nn.Module: pass "
                            "torch.jit.script(model)")
    raise TypeError("MRLForce takes a model file path, the model's bytes, or a torch.jit.ScriptModule, not %s"
                    % type(model).__name__)
%}

// OpenMMException (and any C++ exception) becomes openmm.OpenMMException with the same text.
%exception {
    try {
        $action
    } catch (std::exception& e) {
        PyObject* openmm = PyImport_ImportModule("openmm");
        PyObject* type = openmm ? PyObject_GetAttrString(openmm, "OpenMMException") : NULL;
        PyErr_SetString(type ? type : PyExc_RuntimeError, e.what());
        Py_XDECREF(type);
        Py_XDECREF(openmm);
        SWIG_fail;
    }
}

%typemap(in) (const char* modelData, size_t modelSize) {
    char* data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize($input, &data, &size) != 0)
        SWIG_fail;
    $1 = data;
    $2 = static_cast<size_t>(size);
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_STRING) (const char* modelData, size_t modelSize) {
    $1 = PyBytes_Check($input) ? 1 : 0;
}

%typemap(in) const std::vector<int>& (std::vector<int> values) {
    PyObject* sequence = PySequence_Fast($input, "expected a sequence of integers");
    if (!sequence)
        SWIG_fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject* index = PyNumber_Index(PySequence_Fast_GET_ITEM(sequence, i));
        long value = index ? PyLong_AsLong(index) : -1;
        Py_XDECREF(index);
        if (PyErr_Occurred()) {
            Py_DECREF(sequence);
            PyErr_SetString(PyExc_TypeError, "expected a sequence of integers");
            SWIG_fail;
        }
        values.push_back(static_cast<int>(value));
    }
    Py_DECREF(sequence);
    $1 = &values;
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_INT32_ARRAY) const std::vector<int>& {
    $1 = PySequence_Check($input) && !PyUnicode_Check($input) ? 1 : 0;
}
%typemap(out) const std::vector<int>& {
    $result = PyList_New($1->size());
    for (size_t i = 0; i < $1->size(); i++)
        PyList_SET_ITEM($result, i, PyLong_FromLong((*$1)[i]));
}
%typemap(out) std::vector<std::string> {
    const std::vector<std::string>& values = $1;
    $result = PyList_New(values.size());
    for (size_t i = 0; i < values.size(); i++)
        PyList_SET_ITEM($result, i, PyUnicode_FromString(values[i].c_str()));
}
%typemap(out) const std::map<std::string, std::string>& {
    $result = PyDict_New();
    for (const auto& item : *$1) {
        PyObject* value = PyUnicode_FromString(item.second.c_str());
        PyDict_SetItemString($result, item.first.c_str(), value);
        Py_DECREF(value);
    }
}
%typemap(out) const std::string& getModelBytes {
    $result = PyBytes_FromStringAndSize($1->data(), $1->size());
}

%pythonprepend MRLPlugin::MRLForce::MRLForce %{
    args = _model_arguments(args)
%}

namespace MRLPlugin {

%feature("docstring") MRLForce "A Force whose energy and forces come from a PyTorch model.

MRLForce(model) takes a model file path, the model's bytes, or a torch.jit.ScriptModule; the file may be
a TorchScript model or an AOTInductor package (.pt2, openmmmrl.export_pt2).  The model
declares its interface with the module attribute mrl_interface (\"positions\", the openmm-torch
convention and the default, or \"graph/1\" with an engine-side neighbor list).  Positions are in nm,
energies in kJ/mol, forces in kJ/mol/nm.  See docs/model-interface.md.";

class MRLForce : public OpenMM::Force {
public:
    explicit MRLForce(const std::string& file);
    MRLForce(const char* modelData, size_t modelSize);
    const std::string& getFile() const;
    const std::string& getModelBytes() const;
    const std::string& getInterface() const;
    double getCutoff() const;
    bool getOutputsForces() const;
    void setOutputsForces(bool outputs);
    void setParticles(const std::vector<int>& particles);
    const std::vector<int>& getParticles() const;
    void setAtomicNumbers(const std::vector<int>& atomicNumbers);
    const std::vector<int>& getAtomicNumbers() const;
    void setMoleculeIndices(const std::vector<int>& moleculeIndices);
    const std::vector<int>& getMoleculeIndices() const;
    void setUsesPeriodicBoundaryConditions(bool periodic);
    bool usesPeriodicBoundaryConditions() const;
    int addGlobalParameter(const std::string& name, double defaultValue);
    int getNumGlobalParameters() const;
    const std::string& getGlobalParameterName(int index) const;
    void setGlobalParameterName(int index, const std::string& name);
    double getGlobalParameterDefaultValue(int index) const;
    void setGlobalParameterDefaultValue(int index, double defaultValue);
    void addEnergyParameterDerivative(const std::string& name);
    int getNumEnergyParameterDerivatives() const;
    const std::string& getEnergyParameterDerivativeName(int index) const;
    void setProperty(const std::string& name, const std::string& value);
    const std::map<std::string, std::string>& getProperties() const;
    static std::vector<std::string> getPropertyNames();

    %extend {
        /** Cast an openmm.Force (for example from System.getForce()) to an MRLForce. */
        static MRLPlugin::MRLForce& cast(OpenMM::Force& force) {
            MRLPlugin::MRLForce* mrl = dynamic_cast<MRLPlugin::MRLForce*>(&force);
            if (mrl == nullptr)
                throw OpenMM::OpenMMException("MRLForce.cast: the force is not an MRLForce.");
            return *mrl;
        }
        /** How the model is stored: "TorchScript" or "AOTInductor" (a .pt2 package). */
        std::string getModelFormat() const {
            return self->getModelFormat() == MRLPlugin::ModelFormat::AOTInductor ? "AOTInductor" : "TorchScript";
        }
        /** Whether an openmm.Force is an MRLForce. */
        static bool isinstance(OpenMM::Force& force) {
            return dynamic_cast<MRLPlugin::MRLForce*>(&force) != nullptr;
        }
        %newobject __copy__;
        MRLPlugin::MRLForce* __copy__() {
            return new MRLPlugin::MRLForce(*self);
        }
        %pythoncode %{
            def __deepcopy__(self, memo):
                return self.__copy__()
        %}
    }
};

} // namespace MRLPlugin
