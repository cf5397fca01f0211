// SPDX-License-Identifier: MIT
#include <fstream>

#include "MRLReaders.h"
#include "MRLText.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include "openmm/serialization/XmlSerializer.h"

using OpenMM::OpenMMException;

namespace MRLPlugin {

TrajectoryFrame readStateFile(const std::string& path, const std::string& label) {
    std::ifstream in(path);
    if (!in)
        throw OpenMMException(openError(label + " file", path));
    std::unique_ptr<OpenMM::State> state;
    try {
        state.reset(OpenMM::XmlSerializer::deserialize<OpenMM::State>(in));
    } catch (const std::exception& e) {
        throw OpenMMException(label + " " + path + " is not an OpenMM State XML file (" + e.what() +
                              "); write it with XmlSerializer.serialize(context.getState(getPositions=True))");
    }
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
    std::ifstream in(path);
    if (!in)
        throw OpenMMException(openError(label + " file", path));
    try {
        return std::unique_ptr<OpenMM::System>(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
    } catch (const std::exception& e) {
        throw OpenMMException(label + " " + path + " is not an OpenMM System XML file (" + e.what() +
                              "); write it with XmlSerializer.serialize(system)");
    }
}

} // namespace MRLPlugin
