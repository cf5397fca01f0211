// SPDX-License-Identifier: MIT
#include "Cli.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "MRLText.h"

namespace MRLPlugin {

Options::Options(std::string command, std::string summary) : command(std::move(command)), summary(std::move(summary)) {
    flag("help", "print this help and exit");
}

Options& Options::option(const std::string& name, const std::string& valueName, const std::string& help,
                         const std::string& defaultValue, bool required) {
    specs.push_back({name, valueName, help, defaultValue, false, required});
    return *this;
}

Options& Options::flag(const std::string& name, const std::string& help) {
    specs.push_back({name, "", help, "", true, false});
    return *this;
}

Options& Options::positional(const std::string& name, const std::string& help, bool many) {
    positionalSpecs.emplace_back(name, help);
    manyPositionals = manyPositionals || many;
    return *this;
}

const Options::Spec* Options::find(const std::string& name) const {
    for (const Spec& spec : specs)
        if (spec.name == name)
            return &spec;
    return nullptr;
}

bool Options::parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; i++) {
        std::string arg = argv[i];
        if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
            std::string name = arg.substr(2), value;
            bool hasValue = false;
            size_t equals = name.find('=');
            if (equals != std::string::npos) {
                value = name.substr(equals + 1);
                name = name.substr(0, equals);
                hasValue = true;
            }
            const Spec* spec = find(name);
            if (spec == nullptr)
                throw UsageError("unknown option --" + name);
            if (spec->isFlag) {
                if (hasValue)
                    throw UsageError(std::string("--").append(name).append(" takes no value"));
                if (name == "help") {
                    std::cout << usage();
                    return false;
                }
                values.insert_or_assign(name, std::string(1, '1'));
                continue;
            }
            if (!hasValue) {
                if (i + 1 >= argc)
                    throw UsageError("--" + name + " needs a value (" + spec->valueName + ")");
                value = argv[++i];
            }
            values[name] = value;
        } else
            positionals.push_back(arg);
    }
    for (const Spec& spec : specs)
        if (spec.required && !isSet(spec.name))
            throw UsageError("--" + spec.name + " is required");
    if (positionals.size() < positionalSpecs.size())
        throw UsageError("missing argument " + positionalSpecs[positionals.size()].first);
    if (!manyPositionals && positionals.size() > positionalSpecs.size())
        throw UsageError("unexpected argument \"" + positionals[positionalSpecs.size()] + "\"");
    return true;
}

bool Options::isSet(const std::string& name) const {
    const Spec* spec = find(name);
    if (spec == nullptr)
        throw std::logic_error("no option --" + name);
    return values.count(name) > 0 || !spec->defaultValue.empty();
}

std::string Options::get(const std::string& name) const {
    const Spec* spec = find(name);
    if (spec == nullptr)
        throw std::logic_error("no option --" + name);
    auto value = values.find(name);
    return value == values.end() ? spec->defaultValue : value->second;
}

double Options::getDouble(const std::string& name) const {
    std::string text = get(name);
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value))
        throw UsageError("--" + name + " needs a number, not \"" + text + "\"");
    return value;
}

long long Options::getInt(const std::string& name) const {
    std::string text = get(name);
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0')
        throw UsageError("--" + name + " needs an integer, not \"" + text + "\"");
    return value;
}

bool Options::getFlag(const std::string& name) const {
    return values.count(name) > 0;
}

std::string Options::usage() const {
    std::ostringstream out;
    out << "usage: mrl-envgen " << command;
    for (const auto& positional : positionalSpecs)
        out << " " << positional.first;
    if (manyPositionals)
        out << " ...";
    out << " [options]\n\n" << summary << "\n";
    if (!positionalSpecs.empty()) {
        out << "\narguments:\n";
        for (const auto& positional : positionalSpecs)
            out << "  " << positional.first << "\n      " << positional.second << "\n";
    }
    out << "\noptions:\n";
    for (const Spec& spec : specs) {
        out << "  --" << spec.name;
        if (!spec.isFlag)
            out << " " << spec.valueName;
        out << "\n      " << spec.help;
        if (spec.required)
            out << " (required)";
        else if (!spec.defaultValue.empty())
            out << " (default: " << spec.defaultValue << ")";
        out << "\n";
    }
    return out.str();
}

ProgressBar::ProgressBar(std::string label, long long total, std::string unit, bool enabled)
    : label(std::move(label)), unit(std::move(unit)), total(total), enabled(enabled), terminal(isatty(2) != 0) {
    start = lastDraw = std::chrono::steady_clock::now();
}

static std::string formatSeconds(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0)
        return "--:--";
    long long s = static_cast<long long>(seconds + 0.5);
    char text[32];
    if (s >= 3600)
        std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(text, sizeof(text), "%02lld:%02lld", s / 60, s % 60);
    return text;
}

void ProgressBar::update(long long done, const std::string& note) {
    if (!enabled)
        return;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start).count();
    int decile = total > 0 ? static_cast<int>(10 * done / total) : 0;
    if (terminal) {
        if (done < total && std::chrono::duration<double>(now - lastDraw).count() < 0.2)
            return;
    } else if (decile == lastDecile && done < total)
        return;
    lastDraw = now;
    lastDecile = decile;
    lastDone = done;
    double rate = elapsed > 0 ? done / elapsed : 0.0;
    double eta = rate > 0 ? (total - done) / rate : NAN;
    const int width = 24;
    int filled = total > 0 ? static_cast<int>(width * std::min(done, total) / total) : 0;
    char line[256];
    std::snprintf(line, sizeof(line), "%s [%s%s] %lld/%lld %s, %.2f %s/s, elapsed %s, ETA %s", label.c_str(),
                  std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done, total, unit.c_str(),
                  rate, unit.c_str(), formatSeconds(elapsed).c_str(), formatSeconds(eta).c_str());
    std::string text = line;
    if (!note.empty())
        text += "  " + note;
    if (terminal)
        std::fprintf(stderr, "\r\033[K%s", text.c_str());
    else
        std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (!enabled)
        return;
    if (lastDone < total || terminal) {
        lastDecile = -1;
        lastDraw = start;
        update(lastDone);
    }
    if (terminal)
        std::fprintf(stderr, "\n");
}

JsonObject& JsonObject::set(const std::string& key, const std::string& rawJson) {
    entries.emplace_back(key, rawJson);
    return *this;
}

JsonObject& JsonObject::setString(const std::string& key, const std::string& value) {
    return set(key, quote(value));
}

JsonObject& JsonObject::setNumber(const std::string& key, double value) {
    if (!std::isfinite(value))
        return set(key, "null");
    std::ostringstream text;
    text.precision(10);
    text << value;
    return set(key, text.str());
}

std::string JsonObject::str(int indent, int level) const {
    if (entries.empty())
        return "{}";
    std::string pad(indent * (level + 1), ' '), close(indent * level, ' ');
    std::string newline = indent > 0 ? "\n" : "";
    std::string out = "{" + newline;
    for (size_t i = 0; i < entries.size(); i++) {
        out += pad + quote(entries[i].first) + (indent > 0 ? ": " : ":") + entries[i].second;
        out += (i + 1 < entries.size() ? "," : "") + newline;
    }
    return out + close + "}";
}

std::string JsonObject::quote(const std::string& value) {
    std::string out = "\"";
    for (unsigned char c : value) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
                out += escaped;
            } else
                out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::vector<long long> parseSlice(const std::string& text, long long n, const std::string& option,
                                  const std::string& items) {
    auto fail = [&](const std::string& why) {
        return UsageError("--" + option + " \"" + text + "\": " + why +
                          "; give start:stop:stride (each part optional, e.g. 0:100:10, ::5, -10:) or one index");
    };
    std::vector<std::string> parts;
    size_t begin = 0;
    while (true) {
        size_t colon = text.find(':', begin);
        std::string part = text.substr(begin, colon == std::string::npos ? std::string::npos : colon - begin);
        parts.push_back(trim(part, " \t"));
        if (colon == std::string::npos)
            break;
        begin = colon + 1;
    }
    if (parts.size() > 3)
        throw fail("too many ':'");
    auto number = [&](const std::string& part, long long fallback) {
        if (part.empty())
            return fallback;
        char* end = nullptr;
        errno = 0;
        long long value = std::strtoll(part.c_str(), &end, 10);
        if (*end != '\0' || errno != 0)
            throw fail("\"" + part + "\" is not an integer");
        return value;
    };
    if (parts.size() == 1) {
        if (parts[0].empty())
            throw fail("empty");
        long long index = number(parts[0], 0);
        if (index < 0)
            index += n;
        if (index < 0 || index >= n)
            throw fail("index out of range: there are " + std::to_string(n) + " " + items);
        return {index};
    }
    long long stride = parts.size() == 3 ? number(parts[2], 1) : 1;
    if (stride < 1)
        throw fail("the stride must be a positive integer");
    long long start = number(parts[0], 0), stop = number(parts[1], n);
    if (start < 0)
        start = std::max(0LL, start + n);
    if (stop < 0)
        stop = std::max(0LL, stop + n);
    start = std::min(start, n);
    stop = std::min(stop, n);
    std::vector<long long> selected;
    for (long long i = start; i < stop; i += stride)
        selected.push_back(i);
    if (selected.empty() && n > 0)
        throw fail("selects none of the " + std::to_string(n) + " " + items);
    return selected;
}

std::pair<int, int> parseShard(const std::string& text) {
    int k = -1, n = -1;
    char extra;
    if (std::sscanf(text.c_str(), "%d/%d%c", &k, &n, &extra) != 2 || n < 1 || k < 0 || k >= n)
        throw UsageError("--shard needs k/n with 0 <= k < n (e.g. 0/4), not \"" + text + "\"");
    return {k, n};
}

std::pair<int, int> mpiRankAndSize() {
    const char* pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                              {"PMI_RANK", "PMI_SIZE"},
                              {"PMIX_RANK", "PMIX_SIZE"},
                              {"SLURM_PROCID", "SLURM_NTASKS"}};
    for (auto& names : pairs) {
        const char* rank = std::getenv(names[0]);
        const char* size = std::getenv(names[1]);
        if (rank != nullptr && size != nullptr && std::atoi(size) > 1)
            return {std::atoi(rank), std::atoi(size)};
    }
    return {0, 1};
}

std::string joinCommandLine(int argc, char** argv) {
    std::string line;
    for (int i = 0; i < argc; i++) {
        std::string arg = argv[i];
        bool plain = !arg.empty() && arg.find_first_of(" \t\"'$\\;&|<>()*?") == std::string::npos;
        if (i > 0)
            line += ' ';
        if (plain)
            line += arg;
        else
            line.append(1, '\'').append(arg).append(1, '\'');
    }
    return line;
}

} // namespace MRLPlugin
