# SPDX-License-Identifier: MIT
# Embeds the device code files (platforms/common/kernels/*.cc) into a generated C++ header, as OpenMM's own
# platforms do: one string constant per file, named after it (mrlForces.cc -> CommonMRLKernelSources::mrlForces).
# Run at build time: cmake -DOUTPUT=<header> -DKERNELS=<file|file...> -P EncodeKernels.cmake
set(text "// Generated from platforms/common/kernels/*.cc by platforms/common/EncodeKernels.cmake: do not edit.\n")
string(APPEND text "#ifndef COMMON_MRL_KERNEL_SOURCES_H_\n#define COMMON_MRL_KERNEL_SOURCES_H_\n\n#include <string>\n\n")
string(APPEND text "namespace MRLPlugin {\n\n/** The device code of the ComputeContext kernel, one string per file of platforms/common/kernels. */\n")
string(APPEND text "struct CommonMRLKernelSources {\n")
string(REPLACE "|" ";" KERNELS "${KERNELS}")
foreach(file ${KERNELS})
  get_filename_component(name "${file}" NAME_WE)
  file(READ "${file}" code)
  string(FIND "${code}" ")MRLKERNEL\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains the raw-string delimiter )MRLKERNEL\"")
  endif()
  string(APPEND text "    static inline const std::string ${name} = R\"MRLKERNEL(${code})MRLKERNEL\";\n")
endforeach()
string(APPEND text "};\n\n} // namespace MRLPlugin\n\n#endif\n")
file(WRITE "${OUTPUT}.tmp" "${text}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
