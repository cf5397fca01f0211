#ifndef OPENMM_MRL_TESTS_DATASET_TEST_RECORD_H_
#define OPENMM_MRL_TESTS_DATASET_TEST_RECORD_H_

// SPDX-License-Identifier: MIT
// A dataset record of random numbers for the tests of the dataset writer and reader.

#include <random>
#include <string>

#include "MRLDataset.h"

namespace MRLTest {

/// A record with `atoms` atoms in two molecules and `frames` frames of random numbers.
inline MRLPlugin::DatasetRecord makeRecord(const std::string& key, int atoms, int frames, unsigned seed) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<float> uniform(-1, 1);
    MRLPlugin::DatasetRecord record;
    record.key = key;
    record.pairId = "id-" + key;
    record.weight = 0.5 + seed % 3;
    for (int i = 0; i < atoms; i++) {
        record.atomicNumbers.push_back(1 + i % 8);
        record.formalCharges.push_back(i == 0 ? -1 : 0);
        record.moleculeIndex.push_back(i < atoms / 2 ? 0 : 1);
        record.anchor.push_back(i < atoms / 2 ? -1 : 0);
    }
    record.smiles = {"CCO", "O"};
    record.moleculeNames = {"central", "partner"};
    record.isCentral = {1, 0};
    for (int i = 0; i + 1 < atoms; i++) {
        record.bonds.push_back({i, i + 1});
        record.bondOrders.push_back(i % 2 ? 1.5f : 1.0f);
    }
    for (int f = 0; f < frames; f++) {
        record.timePs.push_back(0.1 * f);
        record.totalEnergyKJPerMol.push_back(uniform(random) * 100);
        record.interactionEnergyKJPerMol.push_back(uniform(random) * 10);
        for (int k = 0; k < 9; k++)
            record.boxNm.push_back(k % 4 == 0 ? 3.0f : 0.0f);
        for (int v = 0; v < 3 * atoms; v++) {
            record.positionsNm.push_back(uniform(random));
            record.totalForcesKJPerMolNm.push_back(uniform(random) * 500);
            record.interactionForcesKJPerMolNm.push_back(uniform(random) * 50);
            record.direction3DMRL.push_back(uniform(random));
        }
    }
    return record;
}

} // namespace MRLTest

#endif
