#ifndef OPENMM_MRL_ENVGEN_COMMANDS_H_
#define OPENMM_MRL_ENVGEN_COMMANDS_H_

// SPDX-License-Identifier: MIT
// The mrl-envgen subcommands.  Each takes the whole argv and the index of its first own argument,
// returns the process exit status, and throws UsageError for command-line mistakes.

namespace MRLPlugin {
int runBuild(int argc, char** argv, int first);
int runCarve(int argc, char** argv, int first);
int runExport(int argc, char** argv, int first);
int runMerge(int argc, char** argv, int first);
int runInspect(int argc, char** argv, int first);
} // namespace MRLPlugin

#endif
