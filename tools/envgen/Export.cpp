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
#include "MRLElements.h"
#include "openmm/OpenMMException.h"

using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

const double KJ_PER_MOL_PER_EV = 96.48533212; // 1 eV in kJ/mol
const double ANGSTROM_PER_NM = 10.0;

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

Options exportOptions() {
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
    return options;
}

/// What goes into the file: which forces come first, whether the dataset has interaction forces.
struct XyzLayout {
    bool interactionFirst = false, haveInteraction = false;
    /// The Properties key: the per-atom columns.
    std::string properties() const {
        std::string text = "species:S:1:pos:R:3:forces:R:3";
        if (interactionFirst)
            text += ":total_forces:R:3";
        else if (haveInteraction)
            text += ":interaction_forces:R:3";
        return text + ":molecule:I:1";
    }
};

/// The comment line of frame f of record r (number `index` in the file).
std::string commentLine(const DatasetRecord& record, long long index, int f, const XyzLayout& layout) {
    const double energyScale = 1.0 / KJ_PER_MOL_PER_EV;
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
    append(comment, "Properties=", layout.properties());
    double total = record.totalEnergyKJPerMol[f], interaction = record.interactionEnergyKJPerMol[f];
    append(comment, " energy=", number((layout.interactionFirst ? interaction : total) * energyScale));
    if (layout.interactionFirst)
        append(comment, " total_energy=", number(total * energyScale));
    if (layout.haveInteraction)
        append(comment, " interaction_energy=", number(interaction * energyScale));
    append(comment, " key=", quoteValue(record.key));
    append(comment, " pair_id=", quoteValue(record.pairId));
    append(comment, " record=", std::to_string(index));
    append(comment, " frame=", std::to_string(f));
    append(comment, " time_ps=", number(record.timePs[f]));
    append(comment, " weight=", number(record.weight));
    append(comment, " pbc=", periodic ? "\"T T T\"" : "\"F F F\"");
    append(comment, " units=", "\"energy:eV length:Angstrom forces:eV/Angstrom\"");
    return comment;
}

/// The atom lines of frame f: species, positions (Angstrom), forces (eV/Angstrom), molecule.
void writeAtoms(std::FILE* out, const DatasetRecord& record, int f, const XyzLayout& layout) {
    const double forceScale = 1.0 / (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM);
    int n = record.numAtoms();
    const float* positions = &record.positionsNm[3LL * n * f];
    const float* totalForces = &record.totalForcesKJPerMolNm[3LL * n * f];
    const float* interactionForces = record.interactionForcesKJPerMolNm.size() >= 3ULL * n * (f + 1)
                                         ? &record.interactionForcesKJPerMolNm[3LL * n * f]
                                         : nullptr;
    const float* first = layout.interactionFirst ? interactionForces : totalForces;
    const float* second = layout.interactionFirst ? totalForces : interactionForces;
    for (int i = 0; i < n; i++) {
        std::string line = elementSymbol(record.atomicNumbers[i]);
        for (int k = 0; k < 3; k++)
            append(line, " ", number(positions[3 * i + k] * ANGSTROM_PER_NM));
        for (int k = 0; k < 3; k++)
            append(line, " ", number(first[3 * i + k] * forceScale));
        if (layout.interactionFirst || layout.haveInteraction)
            for (int k = 0; k < 3; k++)
                append(line, " ", number(second[3 * i + k] * forceScale));
        append(line, " ", std::to_string(record.moleculeIndex[i]));
        line += '\n';
        std::fputs(line.c_str(), out);
    }
}

/// Closes the temporary file, syncs it and renames it to `output`; throws when any of that fails.
void commit(TemporaryFile& temporary, const std::string& output) {
    bool failed = std::ferror(temporary.file) != 0;
    failed = std::fclose(temporary.file) != 0 || failed;
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
}

} // namespace

int runExport(int argc, char** argv, int first) {
    Options options = exportOptions();
    if (!options.parse(argc, argv, first))
        return 0;
    std::string input = options.getPositionals()[0], output = options.get("output");
    std::string kind = options.get("forces");
    if (kind != "total" && kind != "interaction")
        throw UsageError("--forces must be total or interaction, not \"" + kind + "\"");
    XyzLayout layout;
    layout.interactionFirst = kind == "interaction";

    DatasetReader reader(input);
    const DatasetAttributes& attributes = reader.getAttributes();
    layout.haveInteraction = attributes.interactionForces != "none" && !attributes.interactionForces.empty();
    if (layout.interactionFirst && !layout.haveInteraction)
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
    ProgressBar progress("export", static_cast<long long>(records.size()), "records", !options.getFlag("no-progress"));
    long long framesWritten = 0, linesWritten = 0, done = 0;
    for (long long r : records) {
        DatasetRecord record = reader.getRecord(static_cast<int>(r));
        for (int f = 0; f < record.numFrames(); f++) {
            std::fprintf(temporary.file, "%d\n%s\n", record.numAtoms(), commentLine(record, r, f, layout).c_str());
            writeAtoms(temporary.file, record, f, layout);
            framesWritten++;
            linesWritten += record.numAtoms();
        }
        progress.update(++done);
    }
    progress.finish();
    commit(temporary, output);

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
