// SPDX-License-Identifier: MIT
// mrl-envgen build: SMILES pairs -> interaction environments -> MMFF94 OpenMM System -> Langevin MD ->
// frames with total and interaction forces, appended crash-safely to an HDF5 dataset.
#include <GraphMol/GraphMol.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>

#include "Cli.h"
#include "Commands.h"
#include "MMFFSystem.h"
#include "MRLDataset.h"
#include "MRLEnvironment.h"
#include "MRLPlatforms.h"
#include "MRLText.h"
#include "openmm/Context.h"
#include "openmm/CustomExternalForce.h"
#include "openmm/LangevinMiddleIntegrator.h"
#include "openmm/LocalEnergyMinimizer.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include "openmm/System.h"

using namespace OpenMM;

namespace MRLPlugin {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// One row of the input CSV.
struct Pair {
    int index = 0; ///< row number among the pairs (0-based): part of every record key
    std::string first, second, id;
    double weight = 1.0;
    int copies = 0; ///< partner copies of this row (the copies column); 0: --copies
};

std::vector<std::string> splitCsvLine(const std::string& line) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); i++) {
        char c = line[i];
        if (c == '"') {
            if (quoted && i + 1 < line.size() && line[i + 1] == '"')
                field += line[++i];
            else
                quoted = !quoted;
        } else if (c == ',' && !quoted) {
            fields.push_back(trim(field));
            field.clear();
        } else
            field += c;
    }
    fields.push_back(trim(field));
    return fields;
}

/// Reads the pairs CSV: columns central/first, partner/second, optional id, weight and copies, with or without a
/// header (a header names the columns: central or smiles1, partner or smiles2, id, weight, copies).  '#' starts a
/// comment line.
std::vector<Pair> readPairs(const std::string& path, std::uint64_t& contentHash) {
    std::ifstream in(path);
    if (!in)
        throw UsageError("cannot read the pairs CSV \"" + path + "\"; check the path");
    std::vector<Pair> pairs;
    std::string line;
    int columns[5] = {0, 1, 2, 3, 4}; // central, partner, id, weight, copies
    bool first = true;
    int lineNumber = 0;
    contentHash = 1469598103934665603ull;
    while (std::getline(in, line)) {
        lineNumber++;
        for (unsigned char c : line)
            contentHash = (contentHash ^ c) * 1099511628211ull;
        contentHash = (contentHash ^ '\n') * 1099511628211ull;
        std::string trimmed = trim(line);
        if (trimmed.empty() || trimmed[0] == '#')
            continue;
        std::vector<std::string> fields = splitCsvLine(trimmed);
        if (first) {
            first = false;
            std::map<std::string, int> names;
            for (size_t i = 0; i < fields.size(); i++) {
                std::string name;
                for (char c : fields[i])
                    name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                names[name] = static_cast<int>(i);
            }
            auto column = [&](std::initializer_list<const char*> aliases, int fallback) {
                for (const char* alias : aliases)
                    if (names.count(alias))
                        return names[alias];
                return fallback;
            };
            if (names.count("central") || names.count("partner") || names.count("smiles1") || names.count("id") ||
                names.count("solute") || names.count("smiles")) {
                columns[0] = column({"central", "smiles1", "solute", "smiles"}, -1);
                columns[1] = column({"partner", "smiles2", "solvent"}, -1);
                columns[2] = column({"id", "name"}, -2);
                columns[3] = column({"weight"}, -2);
                columns[4] = column({"copies"}, -2);
                if (columns[0] < 0 || columns[1] < 0)
                    throw UsageError("the header of \"" + path +
                                     "\" needs columns central and partner (or smiles1 and smiles2)");
                continue;
            }
        }
        Pair pair;
        pair.index = static_cast<int>(pairs.size());
        auto field = [&](int column) {
            return column >= 0 && column < static_cast<int>(fields.size()) ? fields[column] : "";
        };
        pair.first = field(columns[0]);
        pair.second = field(columns[1]);
        if (pair.first.empty() || pair.second.empty())
            throw UsageError("line " + std::to_string(lineNumber) + " of \"" + path +
                             "\" needs two SMILES (central, partner)");
        pair.id = field(columns[2]);
        if (pair.id.empty())
            pair.id = "pair" + std::to_string(pair.index);
        std::string weight = field(columns[3]);
        if (!weight.empty()) {
            char* end = nullptr;
            pair.weight = std::strtod(weight.c_str(), &end);
            if (*end != '\0' || !std::isfinite(pair.weight) || pair.weight < 0)
                throw UsageError("line " + std::to_string(lineNumber) + " of \"" + path + "\": the weight \"" + weight +
                                 "\" is not a non-negative number");
        }
        std::string copies = field(columns[4]);
        if (!copies.empty()) {
            char* end = nullptr;
            long value = std::strtol(copies.c_str(), &end, 10);
            if (*end != '\0' || value < 1 || value > 100000)
                throw UsageError("line " + std::to_string(lineNumber) + " of \"" + path + "\": the copies \"" + copies +
                                 "\" is not a whole number from 1 to 100000 (leave it empty for --copies)");
            pair.copies = static_cast<int>(value);
        }
        pairs.push_back(pair);
    }
    if (pairs.empty())
        throw UsageError("\"" + path + "\" holds no SMILES pairs");
    return pairs;
}

std::string shardedPath(const std::string& path, int rank, int size) {
    if (size <= 1)
        return path;
    size_t dot = path.rfind('.');
    size_t slash = path.rfind('/');
    std::string suffix = ".shard" + std::to_string(rank) + "of" + std::to_string(size);
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
        return path + suffix;
    return path.substr(0, dot) + suffix + path.substr(dot);
}

/// The platform named by --platform, or a UsageError listing those present.
Platform& platformOrUsageError(const std::string& name) {
    Platform* platform = findPlatform(name);
    if (platform == nullptr)
        throw UsageError("no OpenMM platform \"" + name + "\"; the platforms here are " + availablePlatforms());
    return *platform;
}

struct Settings {
    int copies, conformers, steps, interval, equilibration, threads;
    double temperature, timestep, friction, minDistance, cutoff, box, restraintMargin, restraintK, maxForce;
    bool periodic, largerIsCentral, baseline;
    std::uint64_t seed;
    std::string platform, central;
};

/// What one record's MD cost (seconds), for the summary and the benchmark.
struct Timing {
    double setup = 0, md = 0, baseline = 0;
    long long steps = 0;
};

/// The environment of one record: the pair's molecules (the same for every conformer record of a pair, and a
/// rerun), the central one with its partner copies placed around it.
Environment makeEnvironment(const Pair& pair, int conformer, const std::string& key, const Settings& settings,
                            std::mt19937_64& random) {
    std::string pairKey = key.substr(0, key.find('/'));
    PreparedMolecule a =
        prepareMolecule(pair.first, settings.conformers, deriveSeed(settings.seed, pairKey + "/first"));
    PreparedMolecule b =
        prepareMolecule(pair.second, settings.conformers, deriveSeed(settings.seed, pairKey + "/second"));
    bool swap = settings.largerIsCentral && b.numHeavyAtoms > a.numHeavyAtoms;
    const PreparedMolecule& central = swap ? b : a;
    const PreparedMolecule& partner = swap ? a : b;

    PlacementOptions placement;
    placement.copies = pair.copies > 0 ? pair.copies : settings.copies;
    placement.minDistanceNm = settings.minDistance;
    placement.periodic = settings.periodic;
    placement.boxNm = settings.box;
    placement.cutoffNm = settings.cutoff;
    return placeEnvironment(central, conformer, partner, conformer, placement, random);
}

/// The MMFF94 System of an environment: in its periodic box, or held together by a flat-bottom sphere of
/// `restraintRadius` (nm) whose force group (2) is not part of the labels.
std::unique_ptr<System> createSystem(const Environment& environment, const Pair& pair, const Settings& settings,
                                     double restraintRadius) {
    MMFFOptions mmff;
    mmff.periodic = settings.periodic;
    mmff.cutoffNm = settings.cutoff;
    std::unique_ptr<System> system;
    try {
        system.reset(createMMFFSystem(*environment.mol, mmff, pair.id));
    } catch (const OpenMMException& e) {
        throw SkipInput(e.what());
    }
    if (settings.periodic) {
        double box = environment.boxNm;
        system->setDefaultPeriodicBoxVectors(Vec3(box, 0, 0), Vec3(0, box, 0), Vec3(0, 0, box));
        return system;
    }
    auto* restraint = new CustomExternalForce(
        "0.5*k_restraint*step(r-r_restraint)*(r-r_restraint)^2; r=sqrt((x-x0)^2+(y-y0)^2+(z-z0)^2)");
    restraint->setName("flat-bottom cluster restraint");
    restraint->addGlobalParameter("k_restraint", settings.restraintK);
    restraint->addGlobalParameter("r_restraint", restraintRadius);
    restraint->addGlobalParameter("x0", environment.centerNm[0]);
    restraint->addGlobalParameter("y0", environment.centerNm[1]);
    restraint->addGlobalParameter("z0", environment.centerNm[2]);
    for (int i = 0; i < system->getNumParticles(); i++)
        restraint->addParticle(i);
    restraint->setForceGroup(2);
    system->addForce(restraint);
    return system;
}

/// A record with the environment's atoms, molecules and bonds, and no frames yet.
DatasetRecord emptyRecord(const std::string& key, const Pair& pair, const Environment& environment) {
    DatasetRecord record;
    record.key = key;
    record.pairId = pair.id;
    record.weight = pair.weight;
    record.centralMolecule = 0;
    for (const RDKit::Atom* atom : environment.mol->atoms()) {
        record.atomicNumbers.push_back(atom->getAtomicNum());
        record.formalCharges.push_back(atom->getFormalCharge());
    }
    record.moleculeIndex = environment.moleculeIndex;
    record.anchor = environment.anchor;
    record.smiles = environment.smiles;
    record.moleculeNames = environment.names;
    record.isCentral = environment.isCentral;
    for (const RDKit::Bond* bond : environment.mol->bonds()) {
        record.bonds.push_back({static_cast<int>(bond->getBeginAtomIdx()), static_cast<int>(bond->getEndAtomIdx())});
        record.bondOrders.push_back(static_cast<float>(bond->getBondTypeAsDouble()));
    }
    return record;
}

/// Records the current state of `context` as the record's frame number `frame`: total (groups 0 and 1) and
/// interaction (group 1) energies and forces, positions, box, 3DMRL directions.  Throws SkipInput when the
/// trajectory explodes (a non-finite energy, a force above --max-force, an atom that left the cluster).
void recordFrame(Context& context, int frame, const Environment& environment, const Settings& settings,
                 double restraintRadius, DatasetRecord& record) {
    // Groups 0 and 1 once each: the total is their sum, so no group is evaluated twice per frame.
    State intramolecular = context.getState(State::Positions | State::Forces | State::Energy, false, 0b01);
    State interaction = context.getState(State::Forces | State::Energy, false, 0b10);
    const std::vector<Vec3>& positions = intramolecular.getPositions();
    const std::vector<Vec3>& interactionForces = interaction.getForces();
    int numAtoms = static_cast<int>(positions.size());
    std::vector<Vec3> forces(numAtoms);
    for (int i = 0; i < numAtoms; i++)
        forces[i] = intramolecular.getForces()[i] + interactionForces[i];
    double energy = intramolecular.getPotentialEnergy() + interaction.getPotentialEnergy();
    auto when = [&] {
        return " at frame " + std::to_string(frame) + " (step " +
               std::to_string(settings.equilibration + (frame + 1) * settings.interval) + ")";
    };
    if (!std::isfinite(energy))
        throw SkipInput("exploding trajectory: the energy is not finite" + when());
    for (int i = 0; i < numAtoms; i++) {
        double force = std::sqrt(forces[i].dot(forces[i]));
        if (!(force <= settings.maxForce))
            throw SkipInput("exploding trajectory: atom " + std::to_string(i) + " feels " + std::to_string(force) +
                            " kJ/mol/nm (more than --max-force)" + when());
        if (!settings.periodic) {
            Vec3 d = positions[i] - environment.centerNm;
            if (std::sqrt(d.dot(d)) > restraintRadius + 1.0)
                throw SkipInput("exploding trajectory: atom " + std::to_string(i) + " left the cluster" + when());
        }
    }
    record.timePs.push_back(intramolecular.getTime());
    record.totalEnergyKJPerMol.push_back(energy);
    record.interactionEnergyKJPerMol.push_back(interaction.getPotentialEnergy());
    Vec3 a, b, c;
    intramolecular.getPeriodicBoxVectors(a, b, c);
    for (const Vec3& v : {a, b, c})
        for (int k = 0; k < 3; k++)
            record.boxNm.push_back(settings.periodic ? static_cast<float>(v[k]) : 0.0f);
    for (int i = 0; i < numAtoms; i++)
        for (int k = 0; k < 3; k++) {
            record.positionsNm.push_back(static_cast<float>(positions[i][k]));
            record.totalForcesKJPerMolNm.push_back(static_cast<float>(forces[i][k]));
            record.interactionForcesKJPerMolNm.push_back(static_cast<float>(interactionForces[i][k]));
        }
    std::vector<float> directions = directionTargets(environment, positions);
    record.direction3DMRL.insert(record.direction3DMRL.end(), directions.begin(), directions.end());
}

/// The seconds of a bare Langevin run of `steps` steps from `positions`, nothing recorded: the speed the
/// tool is measured against.
double timeBareRun(const System& system, const Settings& settings, Platform& platform,
                   const std::map<std::string, std::string>& properties, int openmmSeed,
                   const std::vector<Vec3>& positions, int steps) {
    LangevinMiddleIntegrator bare(settings.temperature, settings.friction, settings.timestep);
    bare.setRandomNumberSeed(openmmSeed);
    Context bareContext(system, bare, platform, properties);
    bareContext.setPositions(positions);
    bareContext.setVelocitiesToTemperature(settings.temperature, openmmSeed);
    bare.step(1);
    Clock::time_point bareStart = Clock::now();
    bare.step(steps);
    bareContext.getState(State::Energy);
    return secondsSince(bareStart);
}

DatasetRecord simulate(const Pair& pair, int conformer, const std::string& key, const Settings& settings,
                       Platform& platform, Timing& timing) {
    Clock::time_point start = Clock::now();
    std::uint64_t recordSeed = deriveSeed(settings.seed, key);
    std::mt19937_64 random(recordSeed);
    int openmmSeed = static_cast<int>(recordSeed % 2147483646) + 1; // 0 would mean "pick one"
    Environment environment = makeEnvironment(pair, conformer, key, settings, random);
    double restraintRadius = environment.radiusNm + settings.restraintMargin;
    std::unique_ptr<System> system = createSystem(environment, pair, settings, restraintRadius);

    std::map<std::string, std::string> properties;
    if (platform.getName() == "CPU")
        properties["Threads"] = std::to_string(settings.threads);
    LangevinMiddleIntegrator integrator(settings.temperature, settings.friction, settings.timestep);
    integrator.setRandomNumberSeed(openmmSeed);
    Context context(*system, integrator, platform, properties);
    context.setPositions(environment.positionsNm);
    LocalEnergyMinimizer::minimize(context, 10.0, 5000);
    State minimized = context.getState(State::Energy | State::Positions, false, 0b11);
    if (!std::isfinite(minimized.getPotentialEnergy()))
        throw SkipInput("energy minimization failed: the energy is " + std::to_string(minimized.getPotentialEnergy()) +
                        " kJ/mol afterwards");
    context.setVelocitiesToTemperature(settings.temperature, openmmSeed);
    timing.setup += secondsSince(start);

    Clock::time_point mdStart = Clock::now();
    integrator.step(settings.equilibration);
    DatasetRecord record = emptyRecord(key, pair, environment);
    int numFrames = settings.steps / settings.interval;
    for (int frame = 0; frame < numFrames; frame++) {
        integrator.step(settings.interval);
        recordFrame(context, frame, environment, settings, restraintRadius, record);
    }
    timing.md += secondsSince(mdStart);
    int steps = settings.equilibration + numFrames * settings.interval;
    timing.steps += steps;
    if (settings.baseline)
        timing.baseline +=
            timeBareRun(*system, settings, platform, properties, openmmSeed, minimized.getPositions(), steps);
    return record;
}

Options buildOptions() {
    Options options("build",
                    "Builds interaction environments from a CSV of SMILES pairs: for each pair, ETKDG conformers\n"
                    "relaxed with MMFF94, the central molecule (the larger one unless --central first) with\n"
                    "--copies partner copies placed around its non-ring heavy atoms at random orientations\n"
                    "without clashes, MMFF94 in OpenMM (intramolecular terms in force group 0, intermolecular\n"
                    "in group 1), energy minimization, Langevin MD, and a frame every --interval steps after\n"
                    "--equilibration: positions, total and interaction energies and forces, 3DMRL directions.\n"
                    "Appends to OUTPUT crash-safely: rerun the same command after an interruption to resume.\n"
                    "Under mpirun each rank builds its shard into OUTPUT.shardKofN.h5 (join with merge).\n"
                    "Units: nm, ps, K, kJ/mol, kJ/mol/nm.  CSV: central,partner[,id[,weight]] with an\n"
                    "optional header naming the columns.");
    options.positional("PAIRS.csv", "SMILES pairs, one per line")
        .option("output", "FILE.h5", "the dataset to write or resume", "", true)
        .option("copies", "N", "partner copies around the central molecule", "5")
        .option("conformers", "N", "records (conformers) per pair", "1")
        .option("central", "larger|first", "which molecule of a pair is central", "larger")
        .option("min-distance", "NM", "minimum heavy-atom distance between molecules when placing (nm)", "0.25")
        .option("temperature", "K", "Langevin temperature (K)", "300")
        .option("timestep", "PS", "time step (ps)", "0.001")
        .option("friction", "1/PS", "Langevin friction (1/ps)", "1")
        .option("equilibration", "STEPS", "MD steps before the first frame", "500")
        .option("steps", "STEPS", "MD steps after equilibration", "1000")
        .option("interval", "STEPS", "steps between recorded frames", "100")
        .flag("periodic",
              "a periodic cubic box (copies beyond one per anchor fill it: solvation) instead of a restrained cluster")
        .option("box", "NM", "--periodic: cubic box edge (nm); default: fits the cluster and twice the cutoff", "")
        .option("cutoff", "NM", "--periodic: nonbonded cutoff (nm)", "0.9")
        .option("restraint-margin", "NM", "flat-bottom restraint radius beyond the initial cluster radius (nm)", "0.3")
        .option("restraint-k", "KJ/MOL/NM2", "flat-bottom restraint force constant (kJ/mol/nm^2)", "1000")
        .option("max-force", "KJ/MOL/NM", "a frame with a larger force on any atom marks an exploding trajectory",
                "50000")
        .option("seed", "N", "random seed: the same seed and options give the same dataset", "1")
        .option("platform", "NAME",
                "OpenMM platform (Reference, CPU, OpenCL, CUDA, ...); Reference is the fastest for clusters of a few "
                "dozen atoms, CPU for large periodic boxes",
                "Reference")
        .option("threads", "N", "threads of the CPU platform", "1")
        .option("shard", "K/N", "build only the pairs with index % N == K (set by mpirun when launched under MPI)", "")
        .option("limit", "N", "build only the first N pairs", "")
        .option("summary", "FILE.json", "also write the JSON summary to this file", "")
        .flag("baseline", "also time a bare Langevin run of each System (benchmark: build speed / bare OpenMM speed)")
        .flag("overwrite", "replace OUTPUT instead of resuming it")
        .flag("quiet", "no progress bar");
    return options;
}

Settings readSettings(const Options& options) {
    Settings settings;
    settings.copies = static_cast<int>(options.getInt("copies"));
    settings.conformers = static_cast<int>(options.getInt("conformers"));
    settings.steps = static_cast<int>(options.getInt("steps"));
    settings.interval = static_cast<int>(options.getInt("interval"));
    settings.equilibration = static_cast<int>(options.getInt("equilibration"));
    settings.threads = static_cast<int>(options.getInt("threads"));
    settings.temperature = options.getDouble("temperature");
    settings.timestep = options.getDouble("timestep");
    settings.friction = options.getDouble("friction");
    settings.minDistance = options.getDouble("min-distance");
    settings.cutoff = options.getDouble("cutoff");
    settings.box = options.isSet("box") ? options.getDouble("box") : 0.0;
    settings.restraintMargin = options.getDouble("restraint-margin");
    settings.restraintK = options.getDouble("restraint-k");
    settings.maxForce = options.getDouble("max-force");
    settings.periodic = options.getFlag("periodic");
    settings.baseline = options.getFlag("baseline");
    settings.seed = static_cast<std::uint64_t>(options.getInt("seed"));
    settings.platform = options.get("platform");
    settings.central = options.get("central");
    if (settings.central != "larger" && settings.central != "first")
        throw UsageError("--central must be larger or first, not \"" + settings.central + "\"");
    settings.largerIsCentral = settings.central == "larger";
    if (settings.copies < 1 || settings.conformers < 1 || settings.threads < 1)
        throw UsageError("--copies, --conformers and --threads must be at least 1");
    if (settings.interval < 1 || settings.steps < settings.interval || settings.equilibration < 0)
        throw UsageError("--interval must be at least 1 and at most --steps, and --equilibration not negative");
    if (settings.temperature <= 0 || settings.timestep <= 0 || settings.friction < 0 || settings.minDistance <= 0 ||
        settings.cutoff <= 0 || settings.maxForce <= 0 || settings.restraintK < 0 || settings.restraintMargin < 0)
        throw UsageError("--temperature, --timestep, --min-distance, --cutoff and --max-force must be positive, "
                         "--friction, --restraint-k and --restraint-margin not negative");
    if (settings.periodic && settings.box > 0 && settings.box < 2 * settings.cutoff)
        throw UsageError("--box must be at least twice --cutoff (" + std::to_string(2 * settings.cutoff) + " nm)");
    return settings;
}

/// The pairs this process builds (index % count == index) and the file it writes.
struct Shard {
    int index = 0, count = 1;
    int rank = 0, size = 1; ///< of the MPI launch (0, 1 without one)
    std::string output;
    std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

/// The shard: from --shard, or from the MPI launcher (each rank then writes its own file).
Shard chooseShard(const Options& options) {
    Shard shard;
    std::tie(shard.rank, shard.size) = mpiRankAndSize();
    shard.output = options.get("output");
    if (options.isSet("shard")) {
        if (shard.size > 1)
            throw UsageError("--shard cannot be combined with an MPI launch (each rank takes its shard already)");
        std::tie(shard.index, shard.count) = parseShard(options.get("shard"));
    } else if (shard.size > 1) {
        shard.index = shard.rank;
        shard.count = shard.size;
        shard.output = shardedPath(shard.output, shard.rank, shard.size);
    }
    return shard;
}

/// Every option that decides the content goes into the file; a resumed run must match it.
DatasetAttributes buildAttributes(const Settings& settings, size_t numPairs, std::uint64_t inputHash,
                                  const Shard& shard, int argc, char** argv) {
    char hashText[24];
    std::snprintf(hashText, sizeof(hashText), "%016llx", static_cast<unsigned long long>(inputHash));
    JsonObject content;
    content.setString("input_fnv1a64", hashText)
        .setNumber("pairs", static_cast<double>(numPairs))
        .setNumber("copies", settings.copies)
        .setNumber("conformers", settings.conformers)
        .setString("central", settings.central)
        .setNumber("min_distance_nm", settings.minDistance)
        .setNumber("temperature_K", settings.temperature)
        .setNumber("timestep_ps", settings.timestep)
        .setNumber("friction_per_ps", settings.friction)
        .setNumber("equilibration_steps", settings.equilibration)
        .setNumber("steps", settings.steps)
        .setNumber("interval_steps", settings.interval)
        .set("periodic", settings.periodic ? "true" : "false")
        .setNumber("box_nm", settings.box)
        .setNumber("cutoff_nm", settings.cutoff)
        .setNumber("restraint_margin_nm", settings.restraintMargin)
        .setNumber("restraint_k_kJ_per_mol_nm2", settings.restraintK)
        .setNumber("max_force_kJ_per_mol_nm", settings.maxForce)
        .setNumber("seed", static_cast<double>(settings.seed))
        .setString("platform", settings.platform)
        .setString("shard", shard.text());
    DatasetAttributes attributes;
    attributes.commandLine = joinCommandLine(argc, argv);
    attributes.optionsJson = content.str(0);
    attributes.forceField = "MMFF94";
    attributes.temperatureK = settings.temperature;
    attributes.timestepPs = settings.timestep;
    attributes.seed = static_cast<long long>(settings.seed);
    attributes.interactionForces = "force_groups:1";
    return attributes;
}

/// One record to build.
struct Job {
    const Pair* pair;
    int conformer;
    std::string key;
};

/// The work of this shard: records not in the file yet (`alreadyDone` counts the others).
std::vector<Job> pendingJobs(const std::vector<Pair>& pairs, const Settings& settings, const Shard& shard,
                             const DatasetWriter& writer, int& alreadyDone) {
    std::vector<Job> jobs;
    alreadyDone = 0;
    for (const Pair& pair : pairs) {
        if (pair.index % shard.count != shard.index)
            continue;
        for (int conformer = 0; conformer < settings.conformers; conformer++) {
            char key[48];
            std::snprintf(key, sizeof(key), "p%06d/c%d", pair.index, conformer);
            if (writer.contains(key))
                alreadyDone++;
            else
                jobs.push_back({&pair, conformer, key});
        }
    }
    return jobs;
}

/// What the jobs gave, for the summary.
struct BuildTally {
    Timing timing;
    long long frames = 0;
    int written = 0, skipped = 0;
    std::map<std::string, int> reasons; ///< skips per skipCategory
};

BuildTally runJobs(const std::vector<Job>& jobs, const Settings& settings, Platform& platform, const Shard& shard,
                   bool quiet, DatasetWriter& writer) {
    int framesPerRecord = settings.steps / settings.interval;
    ProgressBar progress(shard.size > 1 ? "rank " + std::to_string(shard.rank) : "build",
                         static_cast<long long>(jobs.size()) * framesPerRecord, "frames",
                         !quiet && (shard.size == 1 || shard.rank == 0));
    BuildTally tally;
    for (size_t j = 0; j < jobs.size(); j++) {
        const Job& job = jobs[j];
        try {
            DatasetRecord record = simulate(*job.pair, job.conformer, job.key, settings, platform, tally.timing);
            writer.addRecord(record);
            tally.frames += record.numFrames();
            tally.written++;
        } catch (const SkipInput& e) {
            writer.addSkipped({job.key, job.pair->id, e.what()});
            std::string reason = e.what();
            tally.reasons[skipCategory(reason)]++;
            tally.skipped++;
        }
        progress.update(static_cast<long long>(j + 1) * framesPerRecord, job.pair->id);
    }
    writer.fold();
    progress.finish();
    return tally;
}

/// The JSON summary, one line under MPI.
std::string summaryText(const BuildTally& tally, const Settings& settings, const Shard& shard, size_t numJobs,
                        int alreadyDone, const Platform& platform, double seconds) {
    const Timing& timing = tally.timing;
    int records = tally.written + tally.skipped;
    JsonObject reasonCounts;
    for (const auto& [reason, count] : tally.reasons)
        reasonCounts.setNumber(reason, count);
    JsonObject summary;
    summary.setString("output", shard.output)
        .setString("shard", shard.text())
        .setNumber("pairs_in_shard", static_cast<double>(alreadyDone + numJobs) / settings.conformers)
        .setNumber("records_written", tally.written)
        .setNumber("records_already_present", alreadyDone)
        .setNumber("skipped", tally.skipped)
        .set("skip_reasons", reasonCounts.str(0))
        .setNumber("frames", static_cast<double>(tally.frames))
        .setNumber("seconds", seconds)
        .setNumber("frames_per_second", seconds > 0 ? tally.frames / seconds : 0)
        .setNumber("setup_seconds_per_record", records > 0 ? timing.setup / records : 0)
        .setNumber("md_steps_per_second", timing.md > 0 ? timing.steps / timing.md : 0)
        .setString("platform", platform.getName());
    if (settings.baseline)
        summary.setNumber("bare_openmm_steps_per_second", timing.baseline > 0 ? timing.steps / timing.baseline : 0)
            .setNumber("speed_ratio_vs_bare_openmm", timing.md > 0 ? timing.baseline / timing.md : 0);
    return summary.str(shard.size > 1 ? 0 : 2) + "\n";
}

} // namespace

int runBuild(int argc, char** argv, int first) {
    Options options = buildOptions();
    if (!options.parse(argc, argv, first))
        return 0;
    Clock::time_point runStart = Clock::now();
    Settings settings = readSettings(options);
    Shard shard = chooseShard(options);
    Platform& platform = platformOrUsageError(settings.platform);

    std::uint64_t inputHash = 0;
    std::vector<Pair> pairs = readPairs(options.getPositionals()[0], inputHash);
    if (options.isSet("limit") && options.getInt("limit") < static_cast<long long>(pairs.size()))
        pairs.resize(std::max<long long>(0, options.getInt("limit")));
    DatasetAttributes attributes = buildAttributes(settings, pairs.size(), inputHash, shard, argc, argv);
    DatasetWriter writer(shard.output, attributes, options.getFlag("overwrite"));

    int alreadyDone = 0;
    std::vector<Job> jobs = pendingJobs(pairs, settings, shard, writer, alreadyDone);
    BuildTally tally = runJobs(jobs, settings, platform, shard, options.getFlag("quiet"), writer);

    std::string text = summaryText(tally, settings, shard, jobs.size(), alreadyDone, platform, secondsSince(runStart));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (options.isSet("summary")) {
        std::ofstream file(options.get("summary"));
        file << text;
    }
    return 0;
}

} // namespace MRLPlugin
