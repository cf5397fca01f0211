#ifndef OPENMM_MRL_ENVGEN_CLI_H_
#define OPENMM_MRL_ENVGEN_CLI_H_

// SPDX-License-Identifier: MIT
// Command-line plumbing shared by the mrl-envgen subcommands: an option parser with --help, a
// progress bar, and a minimal JSON writer for summaries.

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace MRLPlugin {

/// A mistake on the command line: main() prints it with a pointer to --help and exits with 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Options of one subcommand.  Every option is `--name VALUE` (or `--name=VALUE`) or a flag `--name`.
class Options {
public:
    Options(std::string command, std::string summary);
    /// An option with a value; an empty default means "not set" unless `required`.
    Options& option(const std::string& name, const std::string& valueName, const std::string& help,
                    const std::string& defaultValue = "", bool required = false);
    Options& flag(const std::string& name, const std::string& help);
    /// Positional arguments (`many`: one or more).
    Options& positional(const std::string& name, const std::string& help, bool many = false);
    /// Parses argv[first..argc); returns false when --help was printed.  Throws UsageError.
    bool parse(int argc, char** argv, int first);

    bool isSet(const std::string& name) const;
    std::string get(const std::string& name) const;
    double getDouble(const std::string& name) const;
    long long getInt(const std::string& name) const;
    bool getFlag(const std::string& name) const;
    const std::vector<std::string>& getPositionals() const { return positionals; }
    std::string usage() const;

private:
    struct Spec {
        std::string name, valueName, help, defaultValue;
        bool isFlag = false, required = false;
    };
    std::string command, summary;
    std::vector<Spec> specs;
    std::vector<std::pair<std::string, std::string>> positionalSpecs;
    bool manyPositionals = false;
    std::map<std::string, std::string> values;
    std::vector<std::string> positionals;
    const Spec* find(const std::string& name) const;
};

/// A progress bar on stderr: count, rate (units/s) and ETA.  Redrawn in place on a terminal, a line
/// every 10% otherwise (logs stay readable).
class ProgressBar {
public:
    ProgressBar(std::string label, long long total, std::string unit, bool enabled = true);
    void update(long long done, const std::string& note = "");
    void finish();

private:
    std::string label, unit;
    long long total, lastDone = 0;
    bool enabled, terminal;
    int lastDecile = -1;
    std::chrono::steady_clock::time_point start, lastDraw;
};

/// A tiny JSON object writer: keys in insertion order, values already formatted with the helpers.
class JsonObject {
public:
    JsonObject& set(const std::string& key, const std::string& rawJson);
    JsonObject& setString(const std::string& key, const std::string& value);
    JsonObject& setNumber(const std::string& key, double value);
    std::string str(int indent = 2, int level = 0) const;
    static std::string quote(const std::string& value);

private:
    std::vector<std::pair<std::string, std::string>> entries;
};

/// A Python-style slice "start:stop:stride" (each part optional, negative start/stop count from the end) or
/// one index, over n items: the selected indices.  Throws UsageError naming `--option` and the items
/// (e.g. "frames") when the text is malformed or selects nothing of n > 0 items.
std::vector<long long> parseSlice(const std::string& text, long long n, const std::string& option,
                                  const std::string& items);

/// "k/n" -> (k, n) with 0 <= k < n; throws UsageError naming the option.
std::pair<int, int> parseShard(const std::string& text);

/// The rank and size an MPI launcher (OpenMPI, MPICH, Slurm) gives this process; (0, 1) otherwise.
std::pair<int, int> mpiRankAndSize();

/// The whole command line as one string (provenance).
std::string joinCommandLine(int argc, char** argv);

} // namespace MRLPlugin

#endif
