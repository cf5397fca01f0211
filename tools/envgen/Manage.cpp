// SPDX-License-Identifier: MIT
// mrl-envgen merge and inspect.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>

#include "Cli.h"
#include "Commands.h"
#include "MRLDataset.h"
#include "MRLEnvironment.h"

namespace MRLPlugin {

int runMerge(int argc, char** argv, int first) {
    Options options("merge",
                    "Joins datasets (e.g. the shards written by the ranks of an MPI run) into one file.\n"
                    "Keys must be unique across the inputs.  The output is written to OUTPUT.tmp and renamed,\n"
                    "so an interrupted merge leaves no half-written file.");
    options.positional("INPUT.h5", "datasets to join, in order", true)
        .option("output", "FILE.h5", "the merged dataset", "", true)
        .flag("overwrite", "replace OUTPUT when it exists");
    if (!options.parse(argc, argv, first))
        return 0;
    std::string output = options.get("output");
    if (std::filesystem::exists(output) && !options.getFlag("overwrite"))
        throw UsageError("\"" + output + "\" exists; give another --output or --overwrite");
    for (const std::string& input : options.getPositionals())
        if (std::error_code error; std::filesystem::equivalent(input, output, error))
            throw UsageError("the output \"" + output + "\" is also an input; write the merge to a new file");
    mergeDatasets(options.getPositionals(), output, joinCommandLine(argc, argv));
    DatasetReader merged(output);
    long long frames = 0;
    for (long long count : merged.getFrameCounts())
        frames += count;
    JsonObject summary;
    summary.setString("output", output)
        .setNumber("inputs", static_cast<double>(options.getPositionals().size()))
        .setNumber("records", merged.getNumRecords())
        .setNumber("frames", static_cast<double>(frames))
        .setNumber("skipped", static_cast<double>(merged.getSkipped().size()));
    std::printf("%s\n", summary.str().c_str());
    return 0;
}

namespace {

/// What inspect prints about a dataset (energies kJ/mol, forces kJ/mol/nm).
struct DatasetSummary {
    long long totalFrames = 0, minAtoms = 0, maxAtoms = 0;
    double meanAtoms = 0, rmsForce = 0, rmsInteraction = NAN;
    double energyMin = 1e300, energyMax = -1e300, interactionSum = 0;
    std::map<std::string, int> pairs; ///< records per pair id
    std::vector<SkippedInput> skipped;
    std::map<std::string, int> reasons; ///< skips per skipCategory
    bool journal = false;               ///< an unfolded journal of an interrupted run is next to the file
};

DatasetSummary summarize(const DatasetReader& reader, const std::string& path) {
    DatasetSummary s;
    std::vector<long long> frames = reader.getFrameCounts(), atoms = reader.getAtomCounts();
    s.totalFrames = std::accumulate(frames.begin(), frames.end(), 0ll);
    s.minAtoms = atoms.empty() ? 0 : *std::min_element(atoms.begin(), atoms.end());
    s.maxAtoms = atoms.empty() ? 0 : *std::max_element(atoms.begin(), atoms.end());
    s.meanAtoms = atoms.empty() ? 0 : std::accumulate(atoms.begin(), atoms.end(), 0.0) / atoms.size();
    // Force and energy statistics over every frame (one record in memory at a time).
    double sumSquaredForce = 0, sumSquaredInteraction = 0;
    long long forceValues = 0, interactionValues = 0;
    for (int r = 0; r < reader.getNumRecords(); r++) {
        DatasetRecord record = reader.getRecord(r);
        s.pairs[record.pairId]++;
        for (float f : record.totalForcesKJPerMolNm) {
            sumSquaredForce += double(f) * f;
            forceValues++;
        }
        for (float f : record.interactionForcesKJPerMolNm)
            if (std::isfinite(f)) {
                sumSquaredInteraction += double(f) * f;
                interactionValues++;
            }
        for (int f = 0; f < record.numFrames(); f++) {
            s.energyMin = std::min(s.energyMin, record.totalEnergyKJPerMol[f]);
            s.energyMax = std::max(s.energyMax, record.totalEnergyKJPerMol[f]);
            s.interactionSum += record.interactionEnergyKJPerMol[f];
        }
    }
    s.skipped = reader.getSkipped();
    for (const SkippedInput& skip : s.skipped)
        s.reasons[skipCategory(skip.reason)]++;
    s.rmsForce = forceValues > 0 ? std::sqrt(sumSquaredForce / (forceValues / 3.0)) : 0;
    s.rmsInteraction = interactionValues > 0 ? std::sqrt(sumSquaredInteraction / (interactionValues / 3.0)) : NAN;
    s.journal = std::filesystem::exists(path + ".journal") && !std::filesystem::is_empty(path + ".journal");
    return s;
}

void printJson(const std::string& path, const DatasetReader& reader, const DatasetSummary& s) {
    const DatasetAttributes& attributes = reader.getAttributes();
    JsonObject summary, reasonCounts;
    for (const auto& [reason, count] : s.reasons)
        reasonCounts.setNumber(reason, count);
    summary.setString("file", path)
        .setString("tool", attributes.tool)
        .setString("force_field", attributes.forceField)
        .setNumber("temperature_K", attributes.temperatureK)
        .setNumber("timestep_ps", attributes.timestepPs)
        .setNumber("seed", static_cast<double>(attributes.seed))
        .setString("interaction_forces", attributes.interactionForces)
        .setNumber("records", reader.getNumRecords())
        .setNumber("pairs", static_cast<double>(s.pairs.size()))
        .setNumber("frames", static_cast<double>(s.totalFrames))
        .setNumber("atoms_min", static_cast<double>(s.minAtoms))
        .setNumber("atoms_mean", s.meanAtoms)
        .setNumber("atoms_max", static_cast<double>(s.maxAtoms))
        .setNumber("rms_force_kJ_per_mol_nm", s.rmsForce)
        .setNumber("rms_interaction_force_kJ_per_mol_nm", s.rmsInteraction)
        .setNumber("mean_interaction_energy_kJ_per_mol", s.totalFrames > 0 ? s.interactionSum / s.totalFrames : NAN)
        .setNumber("skipped", static_cast<double>(s.skipped.size()))
        .set("skip_reasons", reasonCounts.str(0))
        .set("unfolded_journal", s.journal ? "true" : "false")
        .set("options", attributes.optionsJson.empty() ? "{}" : attributes.optionsJson);
    JsonObject labelSets;
    for (const auto& [name, method] : attributes.labelSets)
        labelSets.setString(name, method);
    summary.set("label_sets", labelSets.str(0));
    std::printf("%s\n", summary.str().c_str());
}

/// The text summary, and the first --records records (read after the summary is printed, as it always was).
void printText(const std::string& path, const DatasetReader& reader, const DatasetSummary& s, const Options& options) {
    const DatasetAttributes& attributes = reader.getAttributes();
    std::printf("%s\n", path.c_str());
    std::printf("  written by     %s\n  command        %s\n", attributes.tool.c_str(), attributes.commandLine.c_str());
    std::printf("  force field    %s, %.1f K, time step %.4g ps, seed %lld\n", attributes.forceField.c_str(),
                attributes.temperatureK, attributes.timestepPs, attributes.seed);
    std::printf("  interaction    %s\n", attributes.interactionForces.c_str());
    for (const auto& [name, method] : attributes.labelSets)
        std::printf("  label set      %s: %s\n", name.c_str(), method.c_str());
    std::printf("  records        %d from %zu pairs, %lld frames\n", reader.getNumRecords(), s.pairs.size(),
                s.totalFrames);
    std::printf("  atoms/record   min %lld, mean %.1f, max %lld\n", s.minAtoms, s.meanAtoms, s.maxAtoms);
    if (s.totalFrames > 0) {
        std::printf("  total energy   %.2f to %.2f kJ/mol\n", s.energyMin, s.energyMax);
        std::printf("  interaction    mean energy %.2f kJ/mol\n", s.interactionSum / s.totalFrames);
        std::printf("  RMS force      %.1f kJ/mol/nm total, %.1f kJ/mol/nm interaction\n", s.rmsForce,
                    s.rmsInteraction);
    }
    std::printf("  skipped        %zu\n", s.skipped.size());
    for (const SkippedInput& skip : s.skipped)
        std::printf("    %-12s %-16s %s\n", skip.key.c_str(), skip.pairId.c_str(), skip.reason.c_str());
    if (s.journal)
        std::printf(
            "  NOTE: an unfolded journal (%s.journal) holds records of an interrupted run; rerun it to fold them\n",
            path.c_str());
    long long list = std::min<long long>(options.getInt("records"), reader.getNumRecords());
    for (int r = 0; r < list; r++) {
        DatasetRecord record = reader.getRecord(r);
        std::string molecules;
        for (int m = 0; m < record.numMolecules(); m++)
            molecules += (m > 0 ? " " : "") + (record.smiles[m].empty() ? record.moleculeNames[m] : record.smiles[m]);
        std::printf("  [%d] %s %s: %d atoms, %d frames, molecules: %s\n", r, record.key.c_str(), record.pairId.c_str(),
                    record.numAtoms(), record.numFrames(), molecules.c_str());
    }
}

} // namespace

int runInspect(int argc, char** argv, int first) {
    Options options("inspect",
                    "Prints a summary of a dataset: provenance, records, frames, atoms, molecules, energies and\n"
                    "forces (kJ/mol, kJ/mol/nm), and the inputs that were skipped with their reasons.");
    options.positional("DATA.h5", "the dataset")
        .flag("json", "print the summary as JSON instead of text")
        .option("records", "N", "also list the first N records", "0");
    if (!options.parse(argc, argv, first))
        return 0;
    std::string path = options.getPositionals()[0];
    DatasetReader reader(path);
    DatasetSummary summary = summarize(reader, path);
    if (options.getFlag("json"))
        printJson(path, reader, summary);
    else
        printText(path, reader, summary, options);
    return 0;
}

} // namespace MRLPlugin
