#ifndef OPENMM_MRL_ELEMENTS_H_
#define OPENMM_MRL_ELEMENTS_H_

// SPDX-License-Identifier: MIT
// The periodic table (hydrogen to oganesson) used by the tools: symbols and standard atomic weights,
// one table for every lookup.  Atomic number 0 is a dummy ("X", mass 0): a virtual site or an unknown atom.

#include <string>

namespace MRLPlugin {

/// The number of entries of the table, the dummy included: atomic numbers run from 0 to NUM_ELEMENTS - 1.
constexpr int NUM_ELEMENTS = 119;

/// The symbol of an element ("C", "Cl"); "X" for 0 and for numbers outside the table.
const char* elementSymbol(int atomicNumber);

/// The atomic number of an element symbol in any case ("CL", "cl" and "Cl" are chlorine), or -1 when
/// the text is no element symbol.
int elementFromSymbol(const std::string& symbol);

/// The element whose standard atomic weight is nearest to `massDa` (in Da); 0 (the dummy) for a mass
/// below 0.5 Da (virtual sites).  Repartitioned hydrogen masses are not recognized as hydrogen.
int elementFromMass(double massDa);

} // namespace MRLPlugin

#endif
