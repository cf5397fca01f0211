// SPDX-License-Identifier: MIT
// openmmmrl.mmff_core: the one MMFF94 -> OpenMM builder (tools/src/MMFFSystem.cpp, the one mrl-envgen uses) for
// Python.  Molecules arrive as MDL mol blocks; the System comes back as an openmm.System (the OpenMM wheel's own
// SWIG declarations are imported, so the pointer becomes that class and Python owns it).  C++ errors arrive as
// ValueError with the same text.  The Python API on top of it is openmmmrl.createMMFFSystem (openmmmrl/mmff.py).
%module(package="openmmmrl") mmff_core

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include <std_string.i>

%{
#include "MMFFSystem.h"
#include "OpenMM.h"
// The imported declarations name every class of the wheel's openmm module.
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
#include <string>
#include <vector>
%}

%exception {
    try {
        $action
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
        SWIG_fail;
    }
}

// A sequence of str -> const std::vector<std::string>&.
%typemap(in) const std::vector<std::string>& (std::vector<std::string> values) {
    PyObject* sequence = PySequence_Fast($input, "expected a sequence of str");
    if (!sequence)
        SWIG_fail;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t size;
        const char* text = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(sequence, i), &size);
        if (!text) {
            Py_DECREF(sequence);
            PyErr_SetString(PyExc_TypeError, "expected a sequence of str");
            SWIG_fail;
        }
        values.emplace_back(text, static_cast<size_t>(size));
    }
    Py_DECREF(sequence);
    $1 = &values;
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_STRING_ARRAY) const std::vector<std::string>& {
    $1 = PySequence_Check($input) && !PyUnicode_Check($input) ? 1 : 0;
}

%newobject MRLPlugin::createMMFFSystemFromMolBlocks;

namespace MRLPlugin {

%feature("docstring") MMFFOptions "The options of the MMFF94 builder (tools/include/MMFFSystem.h): variant
(\"MMFF94\" or \"MMFF94s\"), periodic, cutoffNm and switchWidthNm (periodic only, nm), dielectric.";
struct MMFFOptions {
    std::string variant;
    bool periodic;
    double cutoffNm;
    double switchWidthNm;
    double dielectric;
};

%feature("docstring") createMMFFSystemFromMolBlocks "createMMFFSystemFromMolBlocks(molBlocks, names, options)
-> openmm.System: the MMFF94 System of the molecules, one MDL mol block each (every hydrogen an atom), joined in
order; names name the molecules in error messages.  Raises ValueError with the builder's message.";
OpenMM::System* createMMFFSystemFromMolBlocks(const std::vector<std::string>& molBlocks,
                                              const std::vector<std::string>& names, const MMFFOptions& options);

} // namespace MRLPlugin
