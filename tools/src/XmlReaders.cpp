// SPDX-License-Identifier: MIT
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "MRLReaders.h"
#include "MRLText.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/serialization/XmlSerializer.h"

using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

bool isNameStart(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

bool isNameChar(char c) {
    return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// What the structure check steps over whole: comments and processing instructions (the XML declaration).
struct Skipped {
    const char *open, *close, *what;
};
const Skipped SKIPPED[] = {{"<!--", "-->", "comment"}, {"<?", "?>", "processing instruction"}};

/// The whole file, or an OpenMMException naming it.
std::string readText(const std::string& path, const std::string& label) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw OpenMMException(openError(label + " file", path));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

std::string findXmlStructureError(const std::string& text) {
    std::vector<std::string> open;
    bool rootSeen = false;
    size_t i = 0, n = text.size();
    auto at = [&](size_t position) { return " at byte " + std::to_string(position); };
    if (text.find('\0') != std::string::npos)
        return "a NUL byte" + at(text.find('\0'));
    while (i < n) {
        if (text[i] != '<') {
            if (open.empty() && !isSpace(text[i]))
                return "text outside the root element" + at(i);
            if (text[i] == '&') {
                size_t end = text.find(';', i);
                if (end == std::string::npos || end - i > 12)
                    return "an unterminated entity reference" + at(i);
                i = end;
            }
            i++;
            continue;
        }
        const Skipped* skipped = nullptr;
        for (const Skipped& kind : SKIPPED)
            if (text.compare(i, std::strlen(kind.open), kind.open) == 0)
                skipped = &kind;
        if (skipped != nullptr) {
            size_t end = text.find(skipped->close, i + std::strlen(skipped->open));
            if (end == std::string::npos)
                return std::string("an unterminated ") + skipped->what + at(i);
            i = end + std::strlen(skipped->close);
            continue;
        }
        if (text.compare(i, 2, "<!") == 0)
            return "a DOCTYPE or CDATA section (OpenMM's files have none)" + at(i);
        bool closing = i + 1 < n && text[i + 1] == '/';
        size_t start = i;
        i += closing ? 2 : 1;
        size_t nameStart = i;
        if (i >= n || !isNameStart(text[i]))
            return "a tag without a name" + at(start);
        while (i < n && isNameChar(text[i]))
            i++;
        std::string name = text.substr(nameStart, i - nameStart);
        if (closing) {
            while (i < n && isSpace(text[i]))
                i++;
            if (i >= n || text[i] != '>')
                return "an unterminated closing tag </" + name + at(start);
            if (open.empty() || open.back() != name)
                return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">") + at(start);
            open.pop_back();
            i++;
            continue;
        }
        if (open.empty() && rootSeen)
            return "a second root element <" + name + ">" + at(start);
        bool selfClosing = false;
        while (true) {
            bool spaced = false;
            while (i < n && isSpace(text[i])) {
                i++;
                spaced = true;
            }
            if (i >= n)
                return "an unterminated tag <" + name + at(start);
            if (text[i] == '>')
                break;
            if (text[i] == '/') {
                if (i + 1 >= n || text[i + 1] != '>')
                    return "a stray '/' in the tag <" + name + at(i);
                selfClosing = true;
                i++;
                break;
            }
            if (!spaced || !isNameStart(text[i]))
                return "a malformed attribute in the tag <" + name + at(i);
            while (i < n && isNameChar(text[i]))
                i++;
            while (i < n && isSpace(text[i]))
                i++;
            if (i >= n || text[i] != '=')
                return "an attribute without a value in the tag <" + name + at(i);
            i++;
            while (i < n && isSpace(text[i]))
                i++;
            if (i >= n || (text[i] != '"' && text[i] != '\''))
                return "an unquoted attribute value in the tag <" + name + at(i);
            char quote = text[i];
            size_t end = text.find(quote, i + 1);
            if (end == std::string::npos)
                return "an unterminated attribute value in the tag <" + name + at(i);
            if (text.find('<', i + 1) < end)
                return "a '<' inside an attribute value of the tag <" + name + at(i);
            i = end + 1;
        }
        i++; // past '>'
        rootSeen = true;
        if (!selfClosing)
            open.push_back(name);
    }
    if (!open.empty())
        return "the element <" + open.back() + "> is not closed (the file is cut short?)";
    if (!rootSeen)
        return "no element";
    return "";
}

namespace {

/// An OpenMM object from its XML file: read whole, its structure checked (findXmlStructureError) before OpenMM's
/// parser sees it; every failure an OpenMMException naming `label`, the file, `kind` ("State", "System") and
/// `advice` (how to write such a file).
template <class T>
std::unique_ptr<T> deserializeXmlFile(const std::string& path, const std::string& label, const char* kind,
                                      const char* advice) {
    std::string text = readText(path, label);
    std::string problem = findXmlStructureError(text);
    std::string notOne = label + " " + path + " is not an OpenMM " + kind + " XML file (";
    if (!problem.empty())
        throw OpenMMException(notOne + "not well-formed XML: " + problem + "); " + advice);
    std::istringstream in(text);
    try {
        return std::unique_ptr<T>(OpenMM::XmlSerializer::deserialize<T>(in));
    } catch (const std::exception& e) {
        throw OpenMMException(notOne + e.what() + "); " + advice);
    }
}

} // namespace

TrajectoryFrame readStateFile(const std::string& path, const std::string& label) {
    std::unique_ptr<OpenMM::State> state = deserializeXmlFile<OpenMM::State>(
        path, label, "State", "write it with XmlSerializer.serialize(context.getState(getPositions=True))");
    TrajectoryFrame frame;
    if ((state->getDataTypes() & OpenMM::State::Positions) == 0)
        throw OpenMMException(label + " " + path +
                              " holds no positions; save the state with context.getState(getPositions=True)");
    frame.positions = state->getPositions();
    state->getPeriodicBoxVectors(frame.box[0], frame.box[1], frame.box[2]);
    frame.hasBox = true;
    frame.timePs = state->getTime();
    return frame;
}

std::unique_ptr<OpenMM::System> readSystemFile(const std::string& path, const std::string& label) {
    return deserializeXmlFile<OpenMM::System>(path, label, "System", "write it with XmlSerializer.serialize(system)");
}

} // namespace MRLPlugin
