// SPDX-License-Identifier: MIT
// mrl-envgen export: a dataset as extended XYZ (one block per frame of each record) that ASE reads with
// ase.io.read(path, index=":").  Units are converted at the border: Angstrom, eV, eV/Angstrom.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "Cli.h"
#include "Commands.h"
#include "MRLDataset.h"
#include "openmm/OpenMMException.h"

using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

const double KJ_PER_MOL_PER_EV = 96.48533212; // 1 eV in kJ/mol
const double ANGSTROM_PER_NM = 10.0;

const char* const SYMBOLS[] = {"X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si",
                               "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu",
                               "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru",
                               "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
                               "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
                               "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac",
                               "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf",
                               "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
const int NUM_SYMBOLS = static_cast<int>(sizeof(SYMBOLS) / sizeof(SYMBOLS[0]));

const char* symbol(int atomicNumber) {
    return atomicNumber > 0 && atomicNumber < NUM_SYMBOLS ? SYMBOLS[atomicNumber] : "X";
}

/// A value for the comment line, double-quoted (with \ and " escaped) so that ASE keeps it whole.
std::string quoteValue(const std::string& value) {
    std::string out = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\')
            out += '\\';
        out += (c == '\n' || c == '\r') ? ' ' : c;
    }
    return out + "\"";
}

std::string number(double value) {
    if (std::isnan(value))
        return "nan";
    char text[32];
    std::snprintf(text, sizeof(text), "%.10g", value);
    return text;
}

/// out += separator + text (one append at a time: GCC 12 warns wrongly about `" " + std::string`).
void append(std::string& out, const char* separator, const std::string& text) {
    out += separator;
    out += text;
}

/// Removes the temporary file unless it was renamed.
struct TemporaryFile {
    std::string path;
    std::FILE* file = nullptr;
    bool keep = false;
    ~TemporaryFile() {
        if (file != nullptr)
            std::fclose(file);
        if (!keep) {
            std::error_code ignored;
            std::filesystem::remove(path, ignored);
        }
    }
};

} // namespace

int runExport(int argc, char** argv, int first) {
    Options options(
        "export",
        "Write a dataset as extended XYZ, one block per frame of each record, for ASE (ase.io.read(path,\n"
        "index=\":\")) and other tools.  Units are converted: positions and the Lattice in Angstrom, energies in eV,\n"
        "forces in eV/Angstrom (1 eV = 96.48533212 kJ/mol, 1 nm = 10 Angstrom); every block says so in its\n"
        "units=\"energy:eV length:Angstrom forces:eV/Angstrom\" key.\n"
        "\n"
        "Per-atom columns: species, pos, forces, interaction_forces (left out when the dataset has none, i.e. its\n"
        "interaction_forces attribute is \"none\"), molecule (the local molecule index).  With --forces total\n"
        "(default) `forces`/`energy` are the total ones; with --forces interaction they are the interaction ones\n"
        "and the total ones go to `total_forces`/`total_energy`.  Keys: energy, interaction_energy, key, pair_id,\n"
        "record, frame (index within the record), time_ps, weight, pbc (\"T T T\" when the frame has a box), Lattice.\n"
        "The file is written to OUTPUT.tmp and renamed when complete.");
    options.positional("DATASET", "the HDF5 dataset (written by mrl-envgen build/carve or DatasetReporter)")
        .option("output", "FILE", "the extended XYZ file to write (replaced when it exists)", "", true)
        .option("forces", "KIND", "which forces and energy go to ASE's `forces` and `energy`: total or interaction",
                "total")
        .option("records", "START:STOP:STRIDE", "which records (Python slice, e.g. 0:10, ::100, -5:)", "::")
        .flag("no-progress", "do not draw the progress bar");
    if (!options.parse(argc, argv, first))
        return 0;
    std::string input = options.getPositionals()[0], output = options.get("output");
    std::string kind = options.get("forces");
    if (kind != "total" && kind != "interaction")
        throw UsageError("--forces must be total or interaction, not \"" + kind + "\"");
    bool interactionFirst = kind == "interaction";

    DatasetReader reader(input);
    const DatasetAttributes& attributes = reader.getAttributes();
    bool haveInteraction = attributes.interactionForces != "none" && !attributes.interactionForces.empty();
    if (interactionFirst && !haveInteraction)
        throw OpenMMException("--forces interaction: " + input +
                              " has no interaction forces (its interaction_forces attribute is \"none\"); use "
                              "--forces total");
    std::vector<long long> records = parseSlice(options.get("records"), reader.getNumRecords(), "records", "records");
    if (records.empty())
        std::cerr << "mrl-envgen export: warning: " << input << " has no records; writing an empty file\n";

    TemporaryFile temporary;
    temporary.path = output + ".tmp";
    temporary.file = std::fopen(temporary.path.c_str(), "w");
    if (temporary.file == nullptr)
        throw OpenMMException("cannot write \"" + temporary.path + "\": " + std::strerror(errno) +
                              "; check that the directory of --output exists and is writable");
    std::FILE* out = temporary.file;
    std::string properties = "species:S:1:pos:R:3:forces:R:3";
    if (interactionFirst)
        properties += ":total_forces:R:3";
    else if (haveInteraction)
        properties += ":interaction_forces:R:3";
    properties += ":molecule:I:1";

    const double energyScale = 1.0 / KJ_PER_MOL_PER_EV;
    const double forceScale = 1.0 / (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM);
    ProgressBar progress("export", static_cast<long long>(records.size()), "records", !options.getFlag("no-progress"));
    long long framesWritten = 0, linesWritten = 0, done = 0;
    for (long long r : records) {
        DatasetRecord record = reader.getRecord(static_cast<int>(r));
        int n = record.numAtoms();
        for (int f = 0; f < record.numFrames(); f++) {
            const float* box = &record.boxNm[9 * f];
            bool periodic = false;
            for (int k = 0; k < 9; k++)
                periodic = periodic || box[k] != 0.0f;
            std::string comment;
            if (periodic) {
                comment += "Lattice=\"";
                for (int k = 0; k < 9; k++)
                    append(comment, k > 0 ? " " : "", number(box[k] * ANGSTROM_PER_NM));
                comment += "\" ";
            }
            append(comment, "Properties=", properties);
            double total = record.totalEnergyKJPerMol[f], interaction = record.interactionEnergyKJPerMol[f];
            append(comment, " energy=", number((interactionFirst ? interaction : total) * energyScale));
            if (interactionFirst)
                append(comment, " total_energy=", number(total * energyScale));
            if (haveInteraction)
                append(comment, " interaction_energy=", number(interaction * energyScale));
            append(comment, " key=", quoteValue(record.key));
            append(comment, " pair_id=", quoteValue(record.pairId));
            append(comment, " record=", std::to_string(r));
            append(comment, " frame=", std::to_string(f));
            append(comment, " time_ps=", number(record.timePs[f]));
            append(comment, " weight=", number(record.weight));
            append(comment, " pbc=", periodic ? "\"T T T\"" : "\"F F F\"");
            append(comment, " units=", "\"energy:eV length:Angstrom forces:eV/Angstrom\"");
            std::fprintf(out, "%d\n%s\n", n, comment.c_str());
            const float* positions = &record.positionsNm[3LL * n * f];
            const float* totalForces = &record.totalForcesKJPerMolNm[3LL * n * f];
            const float* interactionForces = record.interactionForcesKJPerMolNm.size() >= 3ULL * n * (f + 1)
                                                 ? &record.interactionForcesKJPerMolNm[3LL * n * f]
                                                 : nullptr;
            const float* first = interactionFirst ? interactionForces : totalForces;
            const float* second = interactionFirst ? totalForces : interactionForces;
            for (int i = 0; i < n; i++) {
                std::string line = symbol(record.atomicNumbers[i]);
                for (int k = 0; k < 3; k++)
                    append(line, " ", number(positions[3 * i + k] * ANGSTROM_PER_NM));
                for (int k = 0; k < 3; k++)
                    append(line, " ", number(first[3 * i + k] * forceScale));
                if (interactionFirst || haveInteraction)
                    for (int k = 0; k < 3; k++)
                        append(line, " ", number(second[3 * i + k] * forceScale));
                append(line, " ", std::to_string(record.moleculeIndex[i]));
                line += '\n';
                std::fputs(line.c_str(), out);
            }
            framesWritten++;
            linesWritten += n;
        }
        progress.update(++done);
    }
    progress.finish();
    bool failed = std::ferror(out) != 0;
    failed = std::fclose(out) != 0 || failed;
    temporary.file = nullptr;
    if (failed)
        throw OpenMMException("writing \"" + temporary.path + "\" failed: " + std::strerror(errno) +
                              " (is the disk full?)");
    fsyncPath(temporary.path);
    std::error_code error;
    std::filesystem::rename(temporary.path, output, error);
    if (error)
        throw OpenMMException("cannot rename \"" + temporary.path + "\" to \"" + output + "\": " + error.message());
    temporary.keep = true;

    JsonObject summary;
    summary.setString("output", output)
        .setNumber("records", static_cast<double>(records.size()))
        .setNumber("frames", static_cast<double>(framesWritten))
        .setNumber("atom_lines", static_cast<double>(linesWritten))
        .setString("forces", kind)
        .setString("units", "energy:eV length:Angstrom forces:eV/Angstrom");
    std::cout << summary.str() << std::endl;
    return 0;
}

} // namespace MRLPlugin
