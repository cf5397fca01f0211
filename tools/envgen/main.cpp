// SPDX-License-Identifier: MIT
// mrl-envgen: interaction-environment datasets with physical (MMFF94/OpenMM) labels.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "Cli.h"
#include "Commands.h"

using namespace MRLPlugin;

static const char* USAGE =
    "usage: mrl-envgen <command> [options]    (mrl-envgen <command> --help for its options)\n"
    "\n"
    "Interaction environments for molecular relational learning, labelled with OpenMM forces.\n"
    "\n"
    "commands:\n"
    "  build     environments from a CSV of SMILES pairs: MMFF94, OpenMM MD, frames into an HDF5 dataset\n"
    "  carve     environments cut out of your own OpenMM simulation (System XML + PDB + DCD or states)\n"
    "  export    a dataset as extended XYZ (Angstrom, eV) for ASE and other tools\n"
    "  merge     join datasets (e.g. the shards of an MPI run) into one file\n"
    "  inspect   print a summary of a dataset\n"
    "\n"
    "Units inside datasets are OpenMM's: nm, ps, K, kJ/mol, kJ/mol/nm.  Format: docs/dataset.md.\n";

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        std::fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (std::strcmp(argv[1], "--version") == 0) {
        std::printf("mrl-envgen %s\n", MRL_VERSION);
        return 0;
    }
    std::string command = argv[1];
    int (*run)(int, char**, int) = nullptr;
    if (command == "build")
        run = runBuild;
    else if (command == "carve")
        run = runCarve;
    else if (command == "export")
        run = runExport;
    else if (command == "merge")
        run = runMerge;
    else if (command == "inspect")
        run = runInspect;
    else {
        std::fprintf(stderr, "mrl-envgen: unknown command \"%s\"\n\n%s", command.c_str(), USAGE);
        return 2;
    }
    try {
        return run(argc, argv, 2);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "mrl-envgen %s: error: %s (see mrl-envgen %s --help)\n", command.c_str(), e.what(),
                     command.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mrl-envgen %s: error: %s\n", command.c_str(), e.what());
        return 1;
    }
}
