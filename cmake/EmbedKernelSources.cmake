# SPDX-License-Identifier: MIT
# Embeds device code in the plugin, as OpenMM's own platforms do: each KERNEL_DIR/*.cc file becomes a string
# constant, named after the file, of the class CLASS, written to OUTPUT_DIR/CLASS.h and OUTPUT_DIR/CLASS.cpp.
# Run at build time:  cmake -DKERNEL_DIR=... -DOUTPUT_DIR=... -DCLASS=... -P EmbedKernelSources.cmake
foreach(variable KERNEL_DIR OUTPUT_DIR CLASS)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "EmbedKernelSources.cmake needs -D${variable}=...")
  endif()
endforeach()

file(GLOB kernel_files "${KERNEL_DIR}/*.cc")
list(SORT kernel_files)
set(declarations "")
set(definitions "")
foreach(file ${kernel_files})
  get_filename_component(name "${file}" NAME_WE)
  file(READ "${file}" content)
  # A C++ string literal per line of the file.
  string(REPLACE "\\" "\\\\" content "${content}")
  string(REPLACE "\"" "\\\"" content "${content}")
  string(REPLACE "\n" "\\n\"\n    \"" content "${content}")
  string(APPEND declarations "    /** The device code of ${name}.cc. */\n    static const std::string ${name};\n")
  string(APPEND definitions "const std::string ${CLASS}::${name} =\n    \"${content}\";\n\n")
endforeach()

string(TOUPPER "${CLASS}" guard)
set(notice "// Generated at build time by cmake/EmbedKernelSources.cmake from the device code in ${KERNEL_DIR}: do not edit.")
file(WRITE "${OUTPUT_DIR}/${CLASS}.h" "${notice}
#ifndef ${guard}_H_
#define ${guard}_H_

#include <string>

namespace MRLPlugin {

/** The device code of the plugin, one string per .cc file, named after it. */
class ${CLASS} {
public:
${declarations}};

} // namespace MRLPlugin

#endif // ${guard}_H_
")
file(WRITE "${OUTPUT_DIR}/${CLASS}.cpp" "${notice}
#include \"${CLASS}.h\"

using namespace MRLPlugin;

${definitions}")
