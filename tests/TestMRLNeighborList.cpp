// SPDX-License-Identifier: MIT
// The engine-side neighbor list against brute force, in open, rectangular and triclinic boxes.
#include "MRLTestUtilities.h"
#include "internal/MRLNeighborList.h"
#include <set>
#include <tuple>

using namespace MRLPlugin;
using namespace MRLTest;
using namespace OpenMM;

namespace {

using Edge = std::tuple<int, int, long, long, long>; // i, j, and the shift rounded to 1e-6 nm

std::vector<double> flatten(const std::vector<Vec3>& positions) {
    std::vector<double> flat;
    for (const Vec3& p : positions)
        flat.insert(flat.end(), {p[0], p[1], p[2]});
    return flat;
}

Edge makeEdge(int i, int j, const Vec3& shift) {
    return {i, j, std::lround(shift[0] * 1e6), std::lround(shift[1] * 1e6), std::lround(shift[2] * 1e6)};
}

/** Every (i, j, image) within reach, searching images -2..2 of each box vector. */
std::set<Edge> bruteForce(const std::vector<Vec3>& positions, const Vec3* box, double reach) {
    std::set<Edge> edges;
    int n = static_cast<int>(positions.size()), range = box ? 2 : 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int x = -range; x <= range; x++)
                for (int y = -range; y <= range; y++)
                    for (int z = -range; z <= range; z++) {
                        if (i == j && x == 0 && y == 0 && z == 0)
                            continue;
                        Vec3 shift = box ? box[0] * x + box[1] * y + box[2] * z : Vec3();
                        Vec3 delta = positions[j] - positions[i] + shift;
                        if (delta.dot(delta) < reach * reach)
                            edges.insert(makeEdge(i, j, shift));
                    }
    return edges;
}

std::set<Edge> listed(const MRLNeighborList& list) {
    std::set<Edge> edges;
    int numEdges = list.getNumEdges();
    for (int e = 0; e < numEdges; e++) {
        const double* s = &list.getEdgeShift()[3 * e];
        Edge edge = makeEdge(static_cast<int>(list.getEdgeIndex()[e]),
                             static_cast<int>(list.getEdgeIndex()[numEdges + e]), Vec3(s[0], s[1], s[2]));
        EXPECT_TRUE(edges.insert(edge).second) << "edge listed twice";
    }
    return edges;
}

void expectMatchesBruteForce(const std::vector<Vec3>& positions, const Vec3* box, double cutoff, double skin) {
    MRLNeighborList list(cutoff, skin);
    std::vector<double> flat = flatten(positions);
    ASSERT_TRUE(list.update(flat.data(), static_cast<int>(positions.size()), box));
    std::set<Edge> expected = bruteForce(positions, box, cutoff + list.getEffectiveSkin());
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(expected, listed(list));
}

TEST(MRLNeighborList, MatchesBruteForceWithoutBox) {
    for (unsigned seed : {1u, 2u, 3u})
        expectMatchesBruteForce(randomPositions(200, 2.5, seed, 0.0), nullptr, 0.5, 0.05);
}

TEST(MRLNeighborList, MatchesBruteForceInRectangularBox) {
    Vec3 box[3] = {Vec3(2.2, 0, 0), Vec3(0, 2.5, 0), Vec3(0, 0, 3.1)};
    std::vector<Vec3> positions = randomPositions(300, 3.0, 4, 0.0);
    for (Vec3& p : positions) // some atoms far outside the box
        p = p * 1.7 - Vec3(1.0, 2.0, 0.5);
    expectMatchesBruteForce(positions, box, 0.5, 0.05);
}

TEST(MRLNeighborList, MatchesBruteForceInTriclinicBoxes) {
    Vec3 boxes[2][3] = {{Vec3(2.5, 0, 0), Vec3(0.8, 2.2, 0), Vec3(-1.1, 0.9, 2.0)},
                        {Vec3(3.0, 0, 0), Vec3(-1.4, 2.6, 0), Vec3(1.3, -1.2, 2.4)}};
    for (auto& box : boxes)
        for (unsigned seed : {5u, 6u})
            expectMatchesBruteForce(randomPositions(250, 3.0, seed, 0.0), box, 0.45, 0.1);
}

TEST(MRLNeighborList, SmallBoxWithFewCellsStillFindsEveryImageOnce) {
    // Heights just above twice the reach: one or two cells per direction, where wrapped neighbor cells coincide.
    Vec3 box[3] = {Vec3(1.05, 0, 0), Vec3(0.3, 1.1, 0), Vec3(0.2, -0.4, 1.2)};
    expectMatchesBruteForce(randomPositions(40, 1.2, 7, 0.0), box, 0.4, 0.1);
}

TEST(MRLNeighborList, RebuildsOnlyWhenAnAtomMovesMoreThanHalfTheSkin) {
    std::vector<Vec3> positions = randomPositions(100, 2.0, 8, 0.0);
    MRLNeighborList list(0.5, 0.1);
    std::vector<double> flat = flatten(positions);
    EXPECT_TRUE(list.update(flat.data(), 100, nullptr));
    flat[0] += 0.04; // less than skin/2
    EXPECT_FALSE(list.update(flat.data(), 100, nullptr));
    flat[3 * 17 + 1] += 0.06; // more than skin/2
    EXPECT_TRUE(list.update(flat.data(), 100, nullptr));
    EXPECT_FALSE(list.update(flat.data(), 100, nullptr));
    Vec3 box[3] = {Vec3(2, 0, 0), Vec3(0, 2, 0), Vec3(0, 0, 2)};
    EXPECT_TRUE(list.update(flat.data(), 100, box)) << "turning on periodicity must rebuild";
    box[0][0] = 2.01;
    EXPECT_TRUE(list.update(flat.data(), 100, box)) << "a new box must rebuild";
    EXPECT_EQ(4, list.getNumBuilds());
}

TEST(MRLNeighborList, EdgesAreGroupedBySourceAndSortedByTarget) {
    MRLNeighborList list(0.5, 0.05);
    std::vector<double> flat = flatten(randomPositions(150, 2.0, 9, 0.0));
    list.update(flat.data(), 150, nullptr);
    int numEdges = list.getNumEdges();
    const std::vector<int64_t>& index = list.getEdgeIndex();
    for (int e = 1; e < numEdges; e++)
        EXPECT_TRUE(index[e - 1] < index[e] ||
                    (index[e - 1] == index[e] && index[numEdges + e - 1] < index[numEdges + e]));
}

} // namespace
