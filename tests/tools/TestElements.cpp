// SPDX-License-Identifier: MIT
// The element table (MRLElements.h) against the periodic table: symbols, atomic numbers, standard
// atomic weights (IUPAC abridged values).
#include <string>

#include <gtest/gtest.h>

#include "MRLElements.h"

using namespace MRLPlugin;

TEST(MRLElements, SymbolsAndAtomicNumbersRoundTrip) {
    for (int z = 1; z < NUM_ELEMENTS; z++)
        EXPECT_EQ(elementFromSymbol(elementSymbol(z)), z) << elementSymbol(z);
    EXPECT_EQ(NUM_ELEMENTS, 119); // hydrogen to oganesson, and the dummy
}

TEST(MRLElements, KnownSymbolsInAnyCase) {
    EXPECT_STREQ(elementSymbol(1), "H");
    EXPECT_STREQ(elementSymbol(6), "C");
    EXPECT_STREQ(elementSymbol(17), "Cl");
    EXPECT_STREQ(elementSymbol(26), "Fe");
    EXPECT_STREQ(elementSymbol(79), "Au");
    EXPECT_STREQ(elementSymbol(92), "U");
    EXPECT_STREQ(elementSymbol(118), "Og");
    EXPECT_EQ(elementFromSymbol("C"), 6);
    EXPECT_EQ(elementFromSymbol("CL"), 17); // PDB element columns are upper case
    EXPECT_EQ(elementFromSymbol("cl"), 17);
    EXPECT_EQ(elementFromSymbol("NA"), 11);
    EXPECT_EQ(elementFromSymbol("Zn"), 30);
}

TEST(MRLElements, UnknownSymbolsAndNumbers) {
    EXPECT_STREQ(elementSymbol(0), "X");
    EXPECT_STREQ(elementSymbol(-1), "X");
    EXPECT_STREQ(elementSymbol(NUM_ELEMENTS), "X");
    EXPECT_EQ(elementFromSymbol(""), -1);
    EXPECT_EQ(elementFromSymbol("X"), -1);
    EXPECT_EQ(elementFromSymbol("Xx"), -1);
    EXPECT_EQ(elementFromSymbol("CAR"), -1);
}

TEST(MRLElements, MassGivesTheNearestElement) {
    EXPECT_EQ(elementFromMass(1.008), 1);
    EXPECT_EQ(elementFromMass(1.00794), 1);
    EXPECT_EQ(elementFromMass(12.01), 6);
    EXPECT_EQ(elementFromMass(14.0067), 7);
    EXPECT_EQ(elementFromMass(15.9994), 8);
    EXPECT_EQ(elementFromMass(22.98977), 11);
    EXPECT_EQ(elementFromMass(35.453), 17);
    EXPECT_EQ(elementFromMass(238.02891), 92);
    EXPECT_EQ(elementFromMass(0.0), 0);      // a virtual site
    EXPECT_EQ(elementFromMass(0.4), 0);      // still massless for this purpose
    EXPECT_EQ(elementFromMass(4.032), 2);    // a repartitioned hydrogen (4 Da) is not recognized as hydrogen
    EXPECT_EQ(elementFromMass(1000.0), 117); // the heaviest standard masses: Ts and Og tie, the first wins
}
