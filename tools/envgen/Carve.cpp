// SPDX-License-Identifier: MIT
// mrl-envgen carve: interaction environments cut out of the user's own OpenMM simulation.  The user's
// System (XML), a PDB with the same atoms in the same order, and frames (a DCD trajectory or State XML
// files) give, for every central molecule and frame, one record: the molecules within a radius of the
// central molecule, made whole, with the total and interaction forces of the whole simulated System.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "Carving.h"
#include "Cli.h"
#include "Commands.h"
#include "MRLDataset.h"
#include "MRLElements.h"
#include "MRLPlatforms.h"
#include "MRLReaders.h"
#include "MRLText.h"
#include "openmm/Context.h"
#include "openmm/Force.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/VerletIntegrator.h"

using OpenMM::OpenMMException;
using OpenMM::Vec3;

namespace MRLPlugin {

namespace {

const double NaN = std::numeric_limits<double>::quiet_NaN();

Options carveOptions() {
    Options options(
        "carve",
        "Carve interaction environments out of your own OpenMM simulation.  For every frame and every central\n"
        "molecule, one record holds the molecules (connected components of the System's bonds and constraints)\n"
        "that have an atom within --radius of a central atom (minimum image when the System is periodic), made\n"
        "whole and placed at the minimum image of the central molecule's first atom, with the forces of the WHOLE\n"
        "simulated System (computed with your System in an OpenMM Context) on those atoms.\n"
        "\n"
        "Record contents: key f{frame:06d}/m{central:04d}; pair_id = the central residue name (\"atoms\" with\n"
        "--central-atoms); elements from the PDB element column (from the System's masses when blank: the\n"
        "nearest standard mass, so give elements when hydrogen masses were repartitioned); formal charges 0 and\n"
        "SMILES \"\" (unknown); molecule names = the residue name of each molecule's first atom; bonds = the\n"
        "System's bonds within the carved atoms, order 0 (unknown); anchor -1 and direction_3dmrl zero (no\n"
        "partner copies); weight 1; the box of each frame (zero when the System is not periodic).\n"
        "Energies: total_energy is the potential energy of the whole System (all force groups);\n"
        "interaction_energy/forces are the sum over --interaction-groups, or NaN when that option is not given\n"
        "(the file's interaction_forces attribute then says \"none\").  Units: nm, ps, kJ/mol, kJ/mol/nm.\n"
        "A rerun of the same command resumes: records already in --output are skipped.");
    options.option("system", "FILE", "the OpenMM System XML (XmlSerializer.serialize(system))", "", true)
        .option("topology", "FILE",
                "a PDB of the same atoms in the same order (residue names/numbers, chain, element columns)", "", true)
        .option("trajectory", "FILE", "the frames: a DCD file (e.g. from OpenMM's DCDReporter)")
        .option("states", "FILE...",
                "the frames: one or more OpenMM State XML files (positions and box; instead of --trajectory)")
        .option("central-resname", "NAME", "every residue with this name is a central molecule (one record each)")
        .option("central-atoms", "LIST", "one central set of zero-based particle indices, e.g. 0-20,25")
        .option("radius", "NM", "a molecule is taken when one of its atoms is within this distance of a central atom",
                "0.5")
        .option("interaction-groups", "LIST",
                "force groups whose sum is the interaction energy/forces, e.g. 1 or 1,2 (default: none -> NaN)")
        .option("frames", "START:STOP:STRIDE", "which frames (Python slice, e.g. 0:1000:10, ::5, -100:)", "::")
        .option("platform", "NAME", "the OpenMM platform for the forces (Reference, CPU, CUDA, OpenCL, ...)",
                "Reference")
        .option("precision", "P", "the platform's Precision property (single, mixed, double) where it has one")
        .option("output", "FILE", "the HDF5 dataset to write (or to resume)", "", true)
        .flag("overwrite", "remove an existing --output (and its journal) first instead of resuming")
        .flag("no-progress", "do not draw the progress bar");
    return options;
}

/// "0-20,25" -> sorted unique indices; throws UsageError.
std::vector<int> parseAtomList(const std::string& text, int numParticles) {
    auto fail = [&](const std::string& why) -> UsageError {
        return UsageError("--central-atoms \"" + text + "\": " + why +
                          "; give zero-based particle indices and inclusive ranges, e.g. 0-20,25");
    };
    std::set<int> atoms;
    std::stringstream stream(text);
    std::string item;
    auto number = [&](const std::string& part) {
        std::string t = trim(part);
        char* end = nullptr;
        errno = 0;
        long long value = std::strtoll(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || errno != 0 || value < 0)
            throw fail("\"" + t + "\" is not a non-negative integer");
        if (value >= numParticles)
            throw fail("index " + t + " is out of range: the System has " + std::to_string(numParticles) +
                       " particles (0-" + std::to_string(numParticles - 1) + ")");
        return static_cast<int>(value);
    };
    while (std::getline(stream, item, ',')) {
        if (trim(item).empty())
            throw fail("empty item");
        size_t dash = item.find('-', item.find_first_not_of(' '));
        if (dash == std::string::npos)
            atoms.insert(number(item));
        else {
            int first = number(item.substr(0, dash)), last = number(item.substr(dash + 1));
            if (last < first)
                throw fail("range " + trim(item) + " runs backwards");
            for (int i = first; i <= last; i++)
                atoms.insert(i);
        }
    }
    if (atoms.empty())
        throw fail("no atoms");
    return std::vector<int>(atoms.begin(), atoms.end());
}

std::vector<int> parseGroups(const std::string& text) {
    std::set<int> groups;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        std::string t = trim(item);
        char* end = nullptr;
        long value = std::strtol(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || value < 0 || value > 31)
            throw UsageError("--interaction-groups \"" + text +
                             "\": give force group numbers 0-31 separated by commas, e.g. 1 or 1,2");
        groups.insert(static_cast<int>(value));
    }
    if (groups.empty())
        throw UsageError("--interaction-groups is empty; give force group numbers, e.g. 1 or 1,2");
    return std::vector<int>(groups.begin(), groups.end());
}

std::string groupsText(const std::vector<int>& groups) {
    std::string text;
    for (size_t i = 0; i < groups.size(); i++) {
        if (i > 0)
            text += ',';
        text += std::to_string(groups[i]);
    }
    return text;
}

/// Splits `--states a.xml b.xml ...` out of argv (the files up to the next option): the parser sees
/// `--states a.xml` only, `states` gets every file.
std::vector<char*> extractStates(int argc, char** argv, int first, std::vector<std::string>& states) {
    std::vector<char*> out(argv, argv + first);
    for (int i = first; i < argc; i++) {
        std::string arg = argv[i];
        bool withValue = arg.rfind("--states=", 0) == 0;
        if (arg != "--states" && !withValue) {
            out.push_back(argv[i]);
            continue;
        }
        out.push_back(argv[i]);
        if (withValue)
            states.push_back(arg.substr(9));
        else if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
            throw UsageError("--states needs one or more OpenMM State XML files");
        else
            out.push_back(argv[i + 1]);
        while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
            states.push_back(argv[++i]);
    }
    return out;
}

/// The options of a carve run, parsed and checked once.
struct CarveSettings {
    std::string systemPath, topologyPath, trajectoryPath, outputPath, platformName, precision, frames;
    std::vector<std::string> stateFiles; ///< empty when the frames come from --trajectory
    std::string centralResname;          ///< empty when the central set is given by --central-atoms
    std::string centralAtoms;
    bool byResidue = false; ///< the central sets are the residues named centralResname, not centralAtoms
    double radiusNm = 0;
    std::string radiusText;
    std::vector<int> interactionGroups; ///< empty: no interaction energies and forces (NaN)
    bool hasPrecision = false, overwrite = false, progress = true;
    bool hasTrajectory() const { return stateFiles.empty(); }
};

CarveSettings readSettings(const Options& options, std::vector<std::string> stateFiles) {
    CarveSettings settings;
    bool haveTrajectory = options.isSet("trajectory"), haveStates = !stateFiles.empty();
    if (haveTrajectory == haveStates)
        throw UsageError("give the frames with exactly one of --trajectory FILE.dcd or --states FILE.xml ...");
    bool byResidue = options.isSet("central-resname"), byAtoms = options.isSet("central-atoms");
    if (byResidue == byAtoms)
        throw UsageError(
            "choose the central molecules with exactly one of --central-resname NAME or --central-atoms LIST");
    settings.radiusText = options.get("radius");
    settings.radiusNm = options.getDouble("radius");
    if (!(settings.radiusNm > 0))
        throw UsageError("--radius must be a positive distance in nm, not " + settings.radiusText);
    if (options.isSet("interaction-groups"))
        settings.interactionGroups = parseGroups(options.get("interaction-groups"));
    settings.systemPath = options.get("system");
    settings.topologyPath = options.get("topology");
    settings.trajectoryPath = options.get("trajectory");
    settings.stateFiles = std::move(stateFiles);
    settings.byResidue = byResidue;
    settings.centralResname = options.get("central-resname");
    settings.centralAtoms = options.get("central-atoms");
    settings.frames = options.get("frames");
    settings.platformName = options.get("platform");
    settings.hasPrecision = options.isSet("precision");
    settings.precision = options.get("precision");
    settings.outputPath = options.get("output");
    settings.overwrite = options.getFlag("overwrite");
    settings.progress = !options.getFlag("no-progress");
    return settings;
}

/// The force group mask of --interaction-groups (0 when not given); a UsageError when no force is in them.
int interactionMaskOf(const OpenMM::System& system, const std::vector<int>& groups) {
    int mask = 0;
    if (groups.empty())
        return mask;
    for (int g : groups)
        mask |= 1 << g;
    bool any = false;
    for (int f = 0; f < system.getNumForces(); f++)
        any = any || ((1 << system.getForce(f).getForceGroup()) & mask) != 0;
    if (!any)
        throw UsageError("--interaction-groups " + groupsText(groups) +
                         ": no force of the System is in these force groups; put the intermolecular forces in "
                         "a group (force.setForceGroup) before serializing the System, or omit the option");
    return mask;
}

/// The element of every atom: the PDB's, or from the System's mass where the PDB has none (with a note).
std::vector<int> elementsOf(const PdbTopology& pdb, const OpenMM::System& system) {
    int n = system.getNumParticles();
    std::vector<int> elements(n);
    int fromMass = 0;
    for (int i = 0; i < n; i++) {
        elements[i] = pdb.atoms[i].element;
        if (elements[i] < 0) {
            elements[i] = elementFromMass(system.getParticleMass(i));
            fromMass++;
        }
    }
    if (fromMass > 0)
        std::cerr << "mrl-envgen carve: note: " << fromMass
                  << " atoms have no element in the PDB's element column (77-78); their elements were guessed from "
                     "the System's masses\n";
    return elements;
}

/// The central atom sets: every residue named --central-resname, or the one --central-atoms list.
std::vector<std::vector<int>> selectCentralSets(const CarveSettings& settings, const PdbTopology& pdb, int n) {
    std::vector<std::vector<int>> centralSets;
    if (!settings.byResidue) {
        centralSets.push_back(parseAtomList(settings.centralAtoms, n));
        return centralSets;
    }
    const std::string& name = settings.centralResname;
    std::map<int, std::vector<int>> residues;
    for (int i = 0; i < n; i++)
        if (pdb.atoms[i].residueName == name)
            residues[pdb.atoms[i].residue].push_back(i);
    for (auto& [residue, atoms] : residues)
        centralSets.push_back(atoms);
    if (centralSets.empty()) {
        std::set<std::string> names;
        for (const PdbAtom& atom : pdb.atoms)
            names.insert(atom.residueName);
        std::string list;
        for (const std::string& residueName : names)
            list += (list.empty() ? "" : " ") + residueName;
        if (list.size() > 300)
            list = list.substr(0, 300) + " ...";
        throw UsageError("--central-resname " + name + ": no residue of " + settings.topologyPath +
                         " has this name; its residue names are: " + list);
    }
    return centralSets;
}

/// The Context that computes the forces, on --platform with --precision.
std::unique_ptr<OpenMM::Context> createContext(const OpenMM::System& system, OpenMM::Integrator& integrator,
                                               const CarveSettings& settings) {
    const std::string& name = settings.platformName;
    OpenMM::Platform* platform = findPlatform(name);
    if (platform == nullptr) {
        std::string failures = pluginLoadFailures();
        throw UsageError("--platform " + name + ": no such OpenMM platform; available: " + availablePlatforms() +
                         (failures.empty() ? "" : "; plugins that failed to load:" + failures));
    }
    std::map<std::string, std::string> properties;
    if (settings.hasPrecision) {
        const std::vector<std::string>& names = platform->getPropertyNames();
        if (std::find(names.begin(), names.end(), "Precision") == names.end())
            throw UsageError("--precision: the " + name +
                             " platform has no Precision property (Reference and CPU always use double/mixed); "
                             "omit the option");
        properties["Precision"] = settings.precision;
    }
    try {
        return std::make_unique<OpenMM::Context>(system, integrator, *platform, properties);
    } catch (const std::exception& e) {
        throw OpenMMException("cannot create an OpenMM Context for --system " + settings.systemPath + " on the " +
                              name + " platform: " + e.what());
    }
}

/// A UsageError when --radius is more than half the width of `box`.
void checkRadius(const CarveSettings& settings, const Vec3* box, const std::string& where) {
    double halfWidth = 0.5 * std::min({box[0][0], box[1][1], box[2][2]});
    if (settings.radiusNm > halfWidth)
        throw UsageError("--radius " + settings.radiusText + " nm is more than half the periodic box (" +
                         std::to_string(halfWidth) + " nm) " + where +
                         ": minimum images are ambiguous; give a smaller --radius");
}

/// The frames of a carve run: a DCD trajectory or State XML files, each checked against the System.
class FrameSource {
public:
    FrameSource(const CarveSettings& settings, int numParticles, bool periodic)
        : stateFiles(settings.stateFiles), numParticles(numParticles) {
        if (!settings.hasTrajectory())
            return;
        const std::string& path = settings.trajectoryPath;
        dcd = std::make_unique<DcdReader>(path, "--trajectory");
        if (dcd->getNumAtoms() != numParticles)
            throw OpenMMException("--trajectory " + path + " has " + std::to_string(dcd->getNumAtoms()) +
                                  " atoms per frame but the System has " + std::to_string(numParticles) +
                                  " particles; give the trajectory of this System with every particle (forces need all "
                                  "of them: a DCDReporter with atomSubset cannot be carved)");
        if (dcd->getIncompleteBytes() != 0)
            std::cerr << "mrl-envgen carve: warning: " << path << " ends with an incomplete frame ("
                      << dcd->getIncompleteBytes()
                      << " bytes, e.g. a simulation still running or killed); it is ignored\n";
        if (dcd->getNumFrames() == 0)
            throw OpenMMException("--trajectory " + path + " holds no complete frame");
        if (periodic && !dcd->hasUnitCell())
            std::cerr << "mrl-envgen carve: warning: the System is periodic but the DCD has no unit cell; the "
                         "System's default box is used for every frame\n";
    }
    long long size() const { return dcd ? dcd->getNumFrames() : static_cast<long long>(stateFiles.size()); }
    /// The DCD's time step (ps), NaN for State files or a DCD without one.
    double timestepPs() const { return dcd && dcd->getTimestepPs() > 0 ? dcd->getTimestepPs() : NaN; }
    void read(long long f, TrajectoryFrame& frame) {
        if (dcd) {
            dcd->read(static_cast<int>(f), frame);
            return;
        }
        const std::string& path = stateFiles[f];
        frame = readStateFile(path, "--states");
        if (static_cast<int>(frame.positions.size()) != numParticles)
            throw OpenMMException("--states " + path + " has " + std::to_string(frame.positions.size()) +
                                  " positions but the System has " + std::to_string(numParticles) +
                                  " particles; give states of this System");
    }

private:
    std::unique_ptr<DcdReader> dcd;
    std::vector<std::string> stateFiles;
    int numParticles;
};

/// The file's attributes: every option that decides the content of a record; not --frames, so that a rerun
/// with more frames (of a trajectory that has grown) adds the new ones.
DatasetAttributes carveAttributes(const CarveSettings& settings, const std::string& pairId, double timestepPs, int argc,
                                  char** argv) {
    JsonObject content;
    content.setString("system", settings.systemPath).setString("topology", settings.topologyPath);
    if (settings.hasTrajectory())
        content.setString("trajectory", settings.trajectoryPath);
    else {
        std::string list = "[";
        for (size_t i = 0; i < settings.stateFiles.size(); i++)
            list += (i > 0 ? ", " : "") + JsonObject::quote(settings.stateFiles[i]);
        content.set("states", list + "]");
    }
    if (settings.byResidue)
        content.setString("central_resname", pairId);
    else
        content.setString("central_atoms", settings.centralAtoms);
    content.setNumber("radius_nm", settings.radiusNm)
        .setString("interaction_groups", groupsText(settings.interactionGroups))
        .setString("platform", settings.platformName)
        .setString("precision", settings.precision);
    DatasetAttributes attributes;
    attributes.commandLine = joinCommandLine(argc, argv);
    attributes.optionsJson = content.str(0);
    attributes.forceField = "user System";
    attributes.temperatureK = NaN;
    attributes.timestepPs = timestepPs;
    attributes.seed = -1;
    attributes.interactionForces =
        settings.interactionGroups.empty() ? "none" : "force_groups:" + groupsText(settings.interactionGroups);
    return attributes;
}

/// Energies and forces of the whole System at one frame.
struct FrameLabels {
    double totalEnergy = 0, interactionEnergy = NaN;
    std::vector<Vec3> totalForces, interactionForces; ///< the latter empty without interaction groups
};

FrameLabels computeLabels(OpenMM::Context& context, const TrajectoryFrame& frame, bool periodic, int interactionMask,
                          long long f) {
    FrameLabels labels;
    try {
        if (periodic)
            context.setPeriodicBoxVectors(frame.box[0], frame.box[1], frame.box[2]);
        context.setPositions(frame.positions);
        OpenMM::State state = context.getState(OpenMM::State::Energy | OpenMM::State::Forces);
        labels.totalEnergy = state.getPotentialEnergy();
        labels.totalForces = state.getForces();
        if (interactionMask != 0) {
            OpenMM::State part =
                context.getState(OpenMM::State::Energy | OpenMM::State::Forces, false, interactionMask);
            labels.interactionEnergy = part.getPotentialEnergy();
            labels.interactionForces = part.getForces();
        }
    } catch (const std::exception& e) {
        throw OpenMMException("computing the forces of frame " + std::to_string(f) + " failed: " + e.what());
    }
    if (!std::isfinite(labels.totalEnergy))
        std::cerr << "mrl-envgen carve: warning: frame " << f << " has a non-finite energy (" << labels.totalEnergy
                  << " kJ/mol)\n";
    return labels;
}

/// What stays the same over the frames of a carve run.
struct CarveRun {
    const CarveSettings& settings;
    const Topology& topology;
    const PdbTopology& pdb;
    const std::vector<int>& elements;
    const std::vector<std::vector<int>>& centralSets;
    std::string pairId;
    bool periodic;
    int interactionMask;
};

/// Record counts and sizes, for the summary.
struct CarveTally {
    long long written = 0, skipped = 0;
    long long minAtoms = std::numeric_limits<long long>::max(), maxAtoms = 0, sumAtoms = 0;
    void add(long long atoms) {
        written++;
        minAtoms = std::min(minAtoms, atoms);
        maxAtoms = std::max(maxAtoms, atoms);
        sumAtoms += atoms;
    }
};

std::string recordKey(long long frame, size_t central) {
    char text[48];
    std::snprintf(text, sizeof(text), "f%06lld/m%04zu", frame, central);
    return text;
}

/// The record of one environment: its molecules' atoms (in `environment.order`) at their carved positions,
/// the System's bonds among them, and the frame's labels of those atoms.
DatasetRecord makeRecord(const CarveRun& run, const std::string& key, const CarvedEnvironment& environment,
                         const TrajectoryFrame& frame, const FrameLabels& labels, CarveScratch& scratch) {
    const Topology& topology = run.topology;
    DatasetRecord record;
    record.key = key;
    record.pairId = run.pairId;
    record.weight = 1.0;
    record.centralMolecule = 0;
    std::vector<int> atoms;
    for (size_t local = 0; local < environment.order.size(); local++) {
        int m = environment.order[local];
        record.smiles.push_back("");
        record.moleculeNames.push_back(run.pdb.atoms[topology.molecules[m][0]].residueName);
        record.isCentral.push_back(local < environment.numCentral ? 1 : 0);
        for (int i : topology.molecules[m]) {
            scratch.localIndex[i] = static_cast<int>(atoms.size());
            atoms.push_back(i);
            record.atomicNumbers.push_back(run.elements[i]);
            record.formalCharges.push_back(0);
            record.moleculeIndex.push_back(static_cast<int>(local));
            record.anchor.push_back(-1);
        }
    }
    for (int i : atoms)
        for (int j : topology.bondPartners[i])
            if (j > i && scratch.localIndex[j] >= 0) {
                record.bonds.push_back({scratch.localIndex[i], scratch.localIndex[j]});
                record.bondOrders.push_back(0.0f);
            }
    record.timePs.push_back(frame.timePs);
    record.totalEnergyKJPerMol.push_back(labels.totalEnergy);
    record.interactionEnergyKJPerMol.push_back(labels.interactionEnergy);
    for (int a = 0; a < 3; a++)
        for (int k = 0; k < 3; k++)
            record.boxNm.push_back(run.periodic ? static_cast<float>(frame.box[a][k]) : 0.0f);
    bool haveInteraction = run.interactionMask != 0;
    for (int i : atoms)
        for (int k = 0; k < 3; k++) {
            record.positionsNm.push_back(static_cast<float>(scratch.shifted[i][k]));
            record.totalForcesKJPerMolNm.push_back(static_cast<float>(labels.totalForces[i][k]));
            record.interactionForcesKJPerMolNm.push_back(
                haveInteraction ? static_cast<float>(labels.interactionForces[i][k]) : static_cast<float>(NaN));
            record.direction3DMRL.push_back(0.0f);
        }
    for (int i : atoms)
        scratch.localIndex[i] = -1;
    return record;
}

/// Carves every central set of one frame not yet in the file and writes its record.
void carveFrame(const CarveRun& run, OpenMM::Context& context, long long f, TrajectoryFrame& frame,
                DatasetWriter& writer, CarveScratch& scratch, CarveTally& tally) {
    const Vec3* box = run.periodic ? frame.box : nullptr;
    if (run.periodic)
        checkRadius(run.settings, frame.box, "at frame " + std::to_string(f));
    FrameLabels labels = computeLabels(context, frame, run.periodic, run.interactionMask, f);
    makeWhole(run.topology, frame.positions, box, scratch);
    for (size_t c = 0; c < run.centralSets.size(); c++) {
        std::string key = recordKey(f, c);
        if (writer.contains(key)) {
            tally.skipped++;
            continue;
        }
        CarvedEnvironment environment = carveEnvironment(run.topology, box, run.centralSets[c], static_cast<int>(c),
                                                         run.settings.radiusNm, scratch);
        DatasetRecord record = makeRecord(run, key, environment, frame, labels, scratch);
        record.validate();
        writer.addRecord(record);
        tally.add(record.numAtoms());
    }
    std::fill(scratch.moleculeMark.begin(), scratch.moleculeMark.end(), -1);
}

/// Carves the selected frames (those whose records are all in the file already are not read).
CarveTally carveFrames(const CarveRun& run, OpenMM::Context& context, FrameSource& source, const Vec3* defaultBox,
                       const std::vector<long long>& frames, DatasetWriter& writer) {
    ProgressBar progress("carve", static_cast<long long>(frames.size()), "frames", run.settings.progress);
    CarveTally tally;
    long long framesDone = 0;
    TrajectoryFrame frame;
    CarveScratch scratch(run.topology);
    for (long long f : frames) {
        bool allDone = true;
        for (size_t c = 0; c < run.centralSets.size(); c++)
            allDone = allDone && writer.contains(recordKey(f, c));
        if (allDone)
            tally.skipped += static_cast<long long>(run.centralSets.size());
        else {
            source.read(f, frame);
            if (run.periodic && !frame.hasBox)
                std::copy(defaultBox, defaultBox + 3, frame.box);
            carveFrame(run, context, f, frame, writer, scratch, tally);
        }
        progress.update(++framesDone, std::to_string(tally.written) + " records");
    }
    progress.finish();
    return tally;
}

void printSummary(const std::string& output, const CarveTally& tally, size_t numFrames, size_t numCentralSets,
                  const std::string& interactionForces, double seconds) {
    bool counted = tally.written > 0;
    JsonObject atomsPerRecord;
    atomsPerRecord.setNumber("min", counted ? static_cast<double>(tally.minAtoms) : NaN)
        .setNumber("mean", counted ? static_cast<double>(tally.sumAtoms) / tally.written : NaN)
        .setNumber("max", counted ? static_cast<double>(tally.maxAtoms) : NaN);
    JsonObject summary;
    summary.setString("output", output)
        .setNumber("records", static_cast<double>(tally.written))
        .setNumber("records_already_present", static_cast<double>(tally.skipped))
        .setNumber("frames", static_cast<double>(numFrames))
        .setNumber("central_molecules", static_cast<double>(numCentralSets))
        .set("atoms_per_record", atomsPerRecord.str(2, 1))
        .setString("interaction_forces", interactionForces)
        .setNumber("seconds", seconds);
    std::cout << summary.str() << std::endl;
}

} // namespace

int runCarve(int argc, char** argv, int first) {
    Options options = carveOptions();
    std::vector<std::string> stateFiles;
    std::vector<char*> args = extractStates(argc, argv, first, stateFiles);
    if (!options.parse(static_cast<int>(args.size()), args.data(), first))
        return 0;
    auto started = std::chrono::steady_clock::now();
    CarveSettings settings = readSettings(options, stateFiles);

    loadPlatformPlugins(); // before the System: it may hold forces of a plugin
    std::unique_ptr<OpenMM::System> system = readSystemFile(settings.systemPath, "--system");
    int n = system->getNumParticles();
    bool periodic = system->usesPeriodicBoundaryConditions();
    int interactionMask = interactionMaskOf(*system, settings.interactionGroups);
    PdbTopology pdb = readPdb(settings.topologyPath, "--topology");
    if (static_cast<int>(pdb.atoms.size()) != n)
        throw OpenMMException("--topology " + settings.topologyPath + " has " + std::to_string(pdb.atoms.size()) +
                              " atoms (ATOM/HETATM records) but the System has " + std::to_string(n) +
                              " particles; give the PDB of the same System, atoms in the same order");
    std::vector<int> elements = elementsOf(pdb, *system);
    std::vector<std::vector<int>> centralSets = selectCentralSets(settings, pdb, n);
    std::string pairId = settings.byResidue ? settings.centralResname : "atoms";

    // The Context computes the forces and finds the molecules.
    OpenMM::VerletIntegrator integrator(0.001);
    std::unique_ptr<OpenMM::Context> context = createContext(*system, integrator, settings);
    Topology topology = findTopology(*system, context->getMolecules(), elements);
    Vec3 defaultBox[3];
    system->getDefaultPeriodicBoxVectors(defaultBox[0], defaultBox[1], defaultBox[2]);
    if (periodic)
        checkRadius(settings, defaultBox, "of the System");

    FrameSource source(settings, n, periodic);
    std::vector<long long> frames = parseSlice(settings.frames, source.size(), "frames", "frames");
    DatasetAttributes attributes = carveAttributes(settings, pairId, source.timestepPs(), argc, argv);
    DatasetWriter writer(settings.outputPath, attributes, settings.overwrite);
    CarveRun run{settings, topology, pdb, elements, centralSets, pairId, periodic, interactionMask};
    CarveTally tally = carveFrames(run, *context, source, defaultBox, frames, writer);
    writer.fold();

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    printSummary(writer.getPath(), tally, frames.size(), centralSets.size(), attributes.interactionForces, seconds);
    return 0;
}

} // namespace MRLPlugin
