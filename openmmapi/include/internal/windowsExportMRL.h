// SPDX-License-Identifier: MIT
#ifndef OPENMM_WINDOWSEXPORTMRL_H_
#define OPENMM_WINDOWSEXPORTMRL_H_

#if defined(_MSC_VER)
#if defined(OPENMM_MRL_BUILDING_SHARED_LIBRARY)
#define OPENMM_EXPORT_MRL __declspec(dllexport)
#else
#define OPENMM_EXPORT_MRL __declspec(dllimport)
#endif
#else
#define OPENMM_EXPORT_MRL __attribute__((visibility("default")))
#endif

#endif // OPENMM_WINDOWSEXPORTMRL_H_
