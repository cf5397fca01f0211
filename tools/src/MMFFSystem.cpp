// SPDX-License-Identifier: MIT
// RDKit's MMFF94 translated into an OpenMM System: see MMFFSystem.h for the forces and their units.
#include "MMFFSystem.h"

#include "openmm/CustomAngleForce.h"
#include "openmm/CustomBondForce.h"
#include "openmm/CustomCompoundBondForce.h"
#include "openmm/CustomNonbondedForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/PeriodicTorsionForce.h"
#include "openmm/System.h"

// RDKit's MMFF headers are not self-contained: RDKitBase.h first.
#include <GraphMol/RDKitBase.h>
#include <sstream>

#include <ForceField/MMFF/Params.h>
#include <GraphMol/FileParsers/FileParsers.h>
#include <GraphMol/ForceFieldHelpers/MMFF/AtomTyper.h>
#include <GraphMol/ForceFieldHelpers/MMFF/Builder.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/RWMol.h>
#include <GraphMol/Substruct/SubstructMatch.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using OpenMM::OpenMMException;

namespace MRLPlugin {

namespace {

// Unit conversions: MMFF works in kcal/mol, Å and degrees; OpenMM in kJ/mol, nm and radians.
constexpr double KJ_PER_KCAL = 4.184;
constexpr double NM_PER_ANGSTROM = 0.1;
constexpr double ANGSTROM_PER_NM = 10.0;

// RDKit's MMFF constants (ForceField/MMFF/*.cpp).  143.9325 converts md/Å to kcal/mol/Å²; with angles in radians
// it also gives MMFF's 0.043844 (= 143.9325 (π/180)²) and 2.51210 (= 143.9325 π/180) for angles in degrees.
const double MDYNE_A = ForceFields::MMFF::MDYNE_A_TO_KCAL_MOL;
constexpr double BOND_CUBIC_PER_ANGSTROM = -2.0; // cs; the quartic term is 7/12 cs²
constexpr double ANGLE_CUBIC_PER_DEGREE = -0.006981317;
constexpr double COULOMB_KCAL_ANGSTROM = 332.0716; // kcal Å / (mol e²)
constexpr double COULOMB_BUFFER_ANGSTROM = 0.05;
constexpr double SCALE_14_ELECTROSTATICS = 0.75;

/// A number written into a Lepton expression without losing precision.
std::string number(double value) {
    std::ostringstream out;
    out << std::setprecision(17) << value;
    return out.str();
}

std::string quoted(const std::string& name) {
    return "\"" + (name.empty() ? std::string("(unnamed)") : name) + "\"";
}

std::string describeAtom(const RDKit::Atom& atom) {
    return "atom " + std::to_string(atom.getIdx()) + " (" + atom.getSymbol() + ")";
}

void checkOptions(const MMFFOptions& options, const std::string& name) {
    const std::string where = " (createMMFFSystem for molecule " + quoted(name) + ")";
    if (options.variant != "MMFF94" && options.variant != "MMFF94s")
        throw OpenMMException("MMFFOptions::variant is \"" + options.variant +
                              "\"; it must be \"MMFF94\" or \"MMFF94s\"" + where);
    if (!(options.dielectric > 0.0) || !std::isfinite(options.dielectric))
        throw OpenMMException("MMFFOptions::dielectric is " + number(options.dielectric) +
                              "; it must be a positive number (1 is MMFF94's default)" + where);
    if (!options.periodic)
        return;
    if (!(options.cutoffNm > 0.0) || !std::isfinite(options.cutoffNm))
        throw OpenMMException("MMFFOptions::cutoffNm is " + number(options.cutoffNm) +
                              "; a periodic System needs a positive cutoff in nm (e.g. 1.0)" + where);
    if (!(options.switchWidthNm >= 0.0) || !(options.switchWidthNm < options.cutoffNm))
        throw OpenMMException("MMFFOptions::switchWidthNm is " + number(options.switchWidthNm) +
                              " nm; it must be at least 0 and less than cutoffNm (" + number(options.cutoffNm) +
                              " nm)" + where);
}

/// Throws unless every hydrogen of `mol` is an explicit atom (MMFF94 types and parametrizes hydrogens as atoms).
void checkExplicitHydrogens(RDKit::RWMol& mol, const std::string& name) {
    mol.updatePropertyCache(false);
    for (const RDKit::Atom* atom : mol.atoms()) {
        const unsigned int numHs = atom->getTotalNumHs(false);
        if (numHs > 0)
            throw OpenMMException("Molecule " + quoted(name) + " has implicit hydrogens: " + describeAtom(*atom) +
                                  " carries " + std::to_string(numHs) +
                                  " hydrogen(s) that are not atoms of the molecule, but MMFF94 needs every hydrogen as "
                                  "an atom.  Add them with RDKit::MolOps::addHs(mol) (addHs(mol, false, true) also "
                                  "gives them coordinates; in Python Chem.AddHs(mol, addCoords=True)) before "
                                  "calling createMMFFSystem");
    }
}

/// Whether MMFF94 has atom types for the element at all (organic elements and a few ions).
bool isMMFFElement(int atomicNumber) {
    static const std::vector<int> elements = {1, 3, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 19, 20, 26, 29, 30, 35, 53};
    return std::find(elements.begin(), elements.end(), atomicNumber) != elements.end();
}

/// Throws when RDKit's typer left atoms untyped (MMFF type 0), naming the first one: an element MMFF94 lacks
/// first, then heavy atoms, then hydrogens.
void checkTypes(const RDKit::ROMol& mol, RDKit::MMFF::MMFFMolProperties& props, const std::string& variant,
                const std::string& name) {
    if (props.isValid())
        return;
    std::vector<const RDKit::Atom*> untyped;
    for (const RDKit::Atom* atom : mol.atoms())
        if (props.getMMFFAtomType(atom->getIdx()) == 0)
            untyped.push_back(atom);
    auto rank = [](const RDKit::Atom* atom) {
        return !isMMFFElement(atom->getAtomicNum()) ? 0 : atom->getAtomicNum() != 1 ? 1 : 2;
    };
    std::stable_sort(untyped.begin(), untyped.end(),
                     [&](const RDKit::Atom* a, const RDKit::Atom* b) { return rank(a) < rank(b); });
    std::string message;
    if (untyped.empty()) {
        message = variant + " cannot type molecule " + quoted(name) + ": RDKit's MMFF94 atom typer marked it invalid";
    } else {
        const RDKit::Atom& atom = *untyped.front();
        message = variant + " cannot type " + describeAtom(atom) + " of molecule " + quoted(name) + ": ";
        const unsigned int degree = atom.getDegree();
        const std::string environment = atom.getSymbol() + " with " + std::to_string(degree) +
                                        (degree == 1 ? " neighbour" : " neighbours") + " and formal charge " +
                                        std::to_string(atom.getFormalCharge());
        if (!isMMFFElement(atom.getAtomicNum()))
            message += "MMFF94 has no atom types for " + atom.getSymbol() + " (" + environment + ")";
        else
            message += "RDKit's MMFF94 atom typer found no MMFF94 atom type for this bonding (" + environment + ")";
        if (untyped.size() > 1) {
            message += "; untyped as well:";
            for (size_t i = 1; i < untyped.size() && i < 6; ++i)
                message += (i > 1 ? ", " : " ") + describeAtom(*untyped[i]);
            if (untyped.size() > 6)
                message += " and " + std::to_string(untyped.size() - 6) + " more";
        }
    }
    throw OpenMMException(message + ".  Use a molecule with only the elements and bonding MMFF94 covers: H, C, N, O, "
                                    "F, Si, P, S, Cl, Br, I in ordinary organic valences, and the ions Li+, Na+, K+, "
                                    "Mg2+, Ca2+, Zn2+, Cu+, Cu2+, Fe2+, Fe3+, F-, Cl-, Br-");
}

/// The topological relation of atom pairs, as RDKit's MMFF builder sees it: 1 (bonded), 2 (1-3), 3 (1-4),
/// or more (anything else).  Computed by a breadth-first search to depth 3 from one atom at a time.
class BondDistances {
public:
    explicit BondDistances(const RDKit::ROMol& mol) : distance(mol.getNumAtoms(), FAR), mol(mol) {}
    /// Sets the source atom; distanceTo(j) then gives min(bond path length from it to j, FAR).
    void setSource(unsigned int source) {
        for (unsigned int atom : visited)
            distance[atom] = FAR;
        visited.assign(1, source);
        distance[source] = 0;
        for (size_t next = 0; next < visited.size(); ++next) {
            const unsigned int atom = visited[next];
            if (distance[atom] == 3)
                continue;
            for (const RDKit::Atom* neighbor : mol.atomNeighbors(mol.getAtomWithIdx(atom))) {
                const unsigned int j = neighbor->getIdx();
                if (distance[j] == FAR) {
                    distance[j] = distance[atom] + 1;
                    visited.push_back(j);
                }
            }
        }
    }
    int distanceTo(unsigned int atom) const { return distance[atom]; }
    static constexpr int FAR = 4;

private:
    std::vector<int> distance;
    std::vector<unsigned int> visited;
    const RDKit::ROMol& mol;
};

/// The Lepton expression of MMFF's buffered 14-7 vdW for distance r and parameters rs (R*_ij) and eps (ε_ij).
const char* VDW_EXPRESSION = "eps*(1.07*rs/(r + 0.07*rs))^7*(1.12*rs^7/(r^7 + 0.12*rs^7) - 2)";

/// Sets the force's name and group, and adds it to the system unless it holds no term.
template <class F>
void addForce(OpenMM::System& system, std::unique_ptr<F> force, int numTerms, bool periodic, const std::string& name,
              int group) {
    if (numTerms == 0)
        return;
    force->setName(name);
    force->setForceGroup(group);
    force->setUsesPeriodicBoundaryConditions(periodic);
    system.addForce(force.release());
}

/// Types `mol` (createMMFFSystem's copy of the caller's molecule) with RDKit's MMFF94 typer; throws, naming the
/// molecule and the atom, when RDKit rejects it or leaves atoms untyped.
std::unique_ptr<RDKit::MMFF::MMFFMolProperties> typeAtoms(RDKit::RWMol& mol, const std::string& variant,
                                                          const std::string& name) {
    std::unique_ptr<RDKit::MMFF::MMFFMolProperties> props;
    try {
        props = std::make_unique<RDKit::MMFF::MMFFMolProperties>(mol, variant);
    } catch (const std::exception& e) {
        throw OpenMMException("RDKit's MMFF94 typer rejected molecule " + quoted(name) + ": " + e.what() +
                              ".  Pass a molecule that RDKit can sanitize (e.g. parsed from a valid SMILES)");
    }
    checkTypes(mol, *props, variant, name);
    return props;
}

/// The checks and the typing every System starts with, on createMMFFSystem's copy `mol` of the caller's molecule:
/// at least one atom, every hydrogen an atom, every atom typed.  Returns the MMFF properties.
std::unique_ptr<RDKit::MMFF::MMFFMolProperties> checkAndType(RDKit::RWMol& mol, const std::string& variant,
                                                             const std::string& name) {
    if (mol.getNumAtoms() == 0)
        throw OpenMMException("Molecule " + quoted(name) + " has no atoms; createMMFFSystem needs a molecule");
    checkExplicitHydrogens(mol, name);
    return typeAtoms(mol, variant, name);
}

/// Molecule `name` read from its MDL mol block: sanitized, hydrogens kept, conformers dropped (positions come from
/// the Context); throws unless it holds exactly one fragment.
std::unique_ptr<RDKit::RWMol> readMolBlock(const std::string& molBlock, const std::string& name) {
    std::unique_ptr<RDKit::RWMol> mol;
    std::string problem = "RDKit found no molecule in it";
    try {
        mol.reset(RDKit::MolBlockToMol(molBlock, /*sanitize=*/true, /*removeHs=*/false));
    } catch (const std::exception& e) {
        problem = e.what();
    }
    if (!mol)
        throw OpenMMException("RDKit cannot read the mol block of molecule " + quoted(name) + ": " + problem +
                              ".  Pass a molecule that RDKit can sanitize (Chem.SanitizeMol(mol) shows the problem)");
    mol->clearConformers();
    std::vector<int> fragmentOfAtom;
    const unsigned int numFragments = mol->getNumAtoms() == 0 ? 1 : RDKit::MolOps::getMolFrags(*mol, fragmentOfAtom);
    if (numFragments > 1)
        throw OpenMMException("Molecule " + quoted(name) + " holds " + std::to_string(numFragments) +
                              " fragments (groups of atoms not bonded to one another), but each entry must be one "
                              "molecule, so that molecule m of the System is entry m.  Pass the fragments as "
                              "molecules of their own (in Python: list(Chem.GetMolFrags(mol, asMols=True)))");
    return mol;
}

/// What every add* step reads: the typed molecule, its MMFF properties, and whether the forces are periodic.
struct TypedMolecule {
    const RDKit::ROMol& mol;
    RDKit::MMFF::MMFFMolProperties& props;
    bool periodic;
};

/// One particle per atom, with RDKit's mass (its PeriodicTable, or the isotope's mass if one is set).
void addParticles(OpenMM::System& system, const RDKit::ROMol& mol) {
    for (const RDKit::Atom* atom : mol.atoms())
        system.addParticle(atom->getMass());
}

// Every term below for which RDKit's accessor finds no parameters is left out, as RDKit's builder does.

/// Bond stretching: 143.9325/2 kb dr² (1 + cs dr + 7/12 cs² dr²), dr in Å, cs = -2/Å.
void addStretch(OpenMM::System& system, const TypedMolecule& typed) {
    const double csNm = BOND_CUBIC_PER_ANGSTROM * ANGSTROM_PER_NM;
    auto bonds = std::make_unique<OpenMM::CustomBondForce>("0.5*k*dr^2*(1 + " + number(csNm) + "*dr + " +
                                                           number(7.0 / 12.0 * csNm * csNm) + "*dr^2); dr = r - r0");
    bonds->addPerBondParameter("r0"); // nm
    bonds->addPerBondParameter("k");  // kJ/mol/nm²
    for (const RDKit::Bond* bond : typed.mol.bonds()) {
        unsigned int bondType;
        RDKit::MMFF::MMFFBond params;
        const unsigned int i = bond->getBeginAtomIdx(), j = bond->getEndAtomIdx();
        if (typed.props.getMMFFBondStretchParams(typed.mol, i, j, bondType, params))
            bonds->addBond(
                i, j,
                {params.r0 * NM_PER_ANGSTROM, MDYNE_A * params.kb * KJ_PER_KCAL * ANGSTROM_PER_NM * ANGSTROM_PER_NM});
    }
    const int numBonds = bonds->getNumBonds();
    addForce(system, std::move(bonds), numBonds, typed.periodic, "MMFF94 bond stretch", 0);
}

/// Whether the MMFF type of `atom` is linear (MMFF's `linh`): its angles bend as 1 + cos θ and have no stretch-bend.
bool isLinearCenter(const TypedMolecule& typed, unsigned int atom) {
    const ForceFields::MMFF::MMFFPropCollection* mmffProp = RDKit::MMFF::DefaultParameters::getMMFFProp();
    return (*mmffProp)(typed.props.getMMFFAtomType(atom))->linh != 0;
}

/// Calls visit(i, j, k, linear) for every angle i-j-k, as RDKit's builder enumerates them: each atom j with two
/// neighbours or more, each pair of its neighbours i < k in RDKit's neighbour order; `linear` as isLinearCenter(j).
template <class Visit> void forEachAngle(const TypedMolecule& typed, Visit visit) {
    for (const RDKit::Atom* center : typed.mol.atoms()) {
        if (center->getDegree() < 2)
            continue;
        const unsigned int j = center->getIdx();
        const bool linear = isLinearCenter(typed, j);
        std::vector<unsigned int> neighbors;
        for (const RDKit::Atom* neighbor : typed.mol.atomNeighbors(center))
            neighbors.push_back(neighbor->getIdx());
        for (size_t a = 0; a < neighbors.size(); ++a)
            for (size_t b = a + 1; b < neighbors.size(); ++b)
                visit(neighbors[a], j, neighbors[b], linear);
    }
}

/// Angle bending: 0.5 c2 ka dθ² (1 + cb dθ) with dθ in degrees and c2 = 143.9325 (π/180)², i.e.
/// 0.5 (143.9325 ka) dθ² with dθ in radians and cb in rad⁻¹.  Linear centres: 143.9325 ka (1 + cos θ).
void addBend(OpenMM::System& system, const TypedMolecule& typed) {
    const double cbRad = ANGLE_CUBIC_PER_DEGREE * ForceFields::MMFF::RAD2DEG;
    auto angles = std::make_unique<OpenMM::CustomAngleForce>("0.5*k*dtheta^2*(1 + " + number(cbRad) +
                                                             "*dtheta); dtheta = theta - theta0");
    angles->addPerAngleParameter("theta0"); // rad
    angles->addPerAngleParameter("k");      // kJ/mol/rad²
    auto linearAngles = std::make_unique<OpenMM::CustomAngleForce>("k*(1 + cos(theta))");
    linearAngles->addPerAngleParameter("k"); // kJ/mol
    forEachAngle(typed, [&](unsigned int i, unsigned int j, unsigned int k, bool linear) {
        unsigned int angleType;
        RDKit::MMFF::MMFFAngle angle;
        if (!typed.props.getMMFFAngleBendParams(typed.mol, i, j, k, angleType, angle))
            return;
        const double ka = MDYNE_A * angle.ka * KJ_PER_KCAL;
        if (linear)
            linearAngles->addAngle(i, j, k, {ka});
        else
            angles->addAngle(i, j, k, {angle.theta0 * ForceFields::MMFF::DEG2RAD, ka});
    });
    const int numAngles = angles->getNumAngles(), numLinearAngles = linearAngles->getNumAngles();
    addForce(system, std::move(angles), numAngles, typed.periodic, "MMFF94 angle bend", 0);
    addForce(system, std::move(linearAngles), numLinearAngles, typed.periodic, "MMFF94 linear angle bend", 0);
}

/// Stretch-bend (not at linear centres): 143.9325 (π/180) (kijk dr_ij + kkji dr_kj) dθ with dr in Å and dθ in
/// degrees, i.e. 143.9325 (kijk dr_ij + kkji dr_kj) dθ with dθ in radians.
void addStretchBend(OpenMM::System& system, const TypedMolecule& typed) {
    auto stretchBends = std::make_unique<OpenMM::CustomCompoundBondForce>(
        3, "(kijk*(distance(p1, p2) - rij0) + kkji*(distance(p2, p3) - rkj0))*(angle(p1, p2, p3) - theta0)");
    for (const char* parameter : {"rij0", "rkj0", "theta0", "kijk", "kkji"}) // nm, nm, rad, kJ/mol/nm/rad (twice)
        stretchBends->addPerBondParameter(parameter);
    const double toKJPerNmRad = MDYNE_A * KJ_PER_KCAL * ANGSTROM_PER_NM;
    forEachAngle(typed, [&](unsigned int i, unsigned int j, unsigned int k, bool linear) {
        if (linear)
            return;
        unsigned int stretchBendType;
        RDKit::MMFF::MMFFStbn stretchBend;
        RDKit::MMFF::MMFFBond bondParams[2];
        RDKit::MMFF::MMFFAngle angle;
        if (!typed.props.getMMFFStretchBendParams(typed.mol, i, j, k, stretchBendType, stretchBend, bondParams, angle))
            return;
        if (stretchBend.kbaIJK == 0.0 && stretchBend.kbaKJI == 0.0)
            return;
        stretchBends->addBond({static_cast<int>(i), static_cast<int>(j), static_cast<int>(k)},
                              {bondParams[0].r0 * NM_PER_ANGSTROM, bondParams[1].r0 * NM_PER_ANGSTROM,
                               angle.theta0 * ForceFields::MMFF::DEG2RAD, stretchBend.kbaIJK * toKJPerNmRad,
                               stretchBend.kbaKJI * toKJPerNmRad});
    });
    const int numStretchBends = stretchBends->getNumBonds();
    addForce(system, std::move(stretchBends), numStretchBends, typed.periodic, "MMFF94 stretch-bend", 0);
}

/// Out-of-plane bending at atoms with exactly three neighbours, one term per choice of the out-of-plane atom L:
/// 0.5 c2 koop χ² (χ in degrees) = 0.5 (143.9325 koop) χ² (χ in radians).  The Wilson angle χ between the bond
/// J-L and the plane I-J-K (J the centre) has sin χ = sin∠IJL sin φ(K-J-I-L) up to its sign (clipped to [-1, 1]
/// against rounding in single precision, as RDKit clips).
void addOutOfPlane(OpenMM::System& system, const TypedMolecule& typed) {
    auto outOfPlane = std::make_unique<OpenMM::CustomCompoundBondForce>(
        4, "0.5*k*chi^2; chi = asin(max(-1, min(1, sin(angle(p1, p2, p4))*sin(dihedral(p3, p2, p1, p4)))))");
    outOfPlane->addPerBondParameter("k"); // kJ/mol/rad²
    for (const RDKit::Atom* center : typed.mol.atoms()) {
        if (center->getDegree() != 3)
            continue;
        // As RDKit's builder: idx[1] is the centre, idx[0], idx[2], idx[3] its neighbours in order.
        int idx[4];
        idx[1] = center->getIdx();
        int slot = 0;
        for (const RDKit::Atom* neighbor : typed.mol.atomNeighbors(center)) {
            idx[slot] = neighbor->getIdx();
            slot += (slot == 0) ? 2 : 1;
        }
        RDKit::MMFF::MMFFOop params;
        if (!typed.props.getMMFFOopBendParams(typed.mol, idx[0], idx[1], idx[2], idx[3], params) || params.koop == 0.0)
            continue;
        const double koop = MDYNE_A * params.koop * KJ_PER_KCAL;
        // (I, J, K, L) for the three terms, as in RDKit::MMFF::Tools::addOop.
        outOfPlane->addBond({idx[0], idx[1], idx[2], idx[3]}, {koop});
        outOfPlane->addBond({idx[0], idx[1], idx[3], idx[2]}, {koop});
        outOfPlane->addBond({idx[2], idx[1], idx[3], idx[0]}, {koop});
    }
    const int numOutOfPlane = outOfPlane->getNumBonds();
    addForce(system, std::move(outOfPlane), numOutOfPlane, typed.periodic, "MMFF94 out-of-plane bend", 0);
}

/// Calls visit(i, j, k, l) for every torsion, enumerated as RDKit::MMFF::Tools::addTorsions: the central bonds
/// j-k match RDKit's default torsion SMARTS (no atom of a triple bond, no terminal atom), both central atoms are sp2
/// or sp3, and i-j-k-l is no 3-membered ring.
template <class Visit> void forEachTorsion(const RDKit::ROMol& mol, Visit visit) {
    std::vector<RDKit::MatchVectType> matches;
    RDKit::SubstructMatch(mol, *RDKit::MMFF::Tools::DefaultTorsionBondSmarts::query(), matches);
    auto spOrSp3 = [](const RDKit::Atom* atom) {
        return atom->getHybridization() == RDKit::Atom::SP2 || atom->getHybridization() == RDKit::Atom::SP3;
    };
    for (const RDKit::MatchVectType& match : matches) {
        const int j = match[0].second, k = match[1].second;
        const RDKit::Bond* central = mol.getBondBetweenAtoms(j, k);
        const RDKit::Atom* jAtom = mol.getAtomWithIdx(j);
        const RDKit::Atom* kAtom = mol.getAtomWithIdx(k);
        if (!spOrSp3(jAtom) || !spOrSp3(kAtom))
            continue;
        for (const RDKit::Bond* bond1 : mol.atomBonds(jAtom)) {
            if (bond1 == central)
                continue;
            const int i = bond1->getOtherAtomIdx(j);
            for (const RDKit::Bond* bond2 : mol.atomBonds(kAtom)) {
                if (bond2 == central || bond2 == bond1)
                    continue;
                const int l = bond2->getOtherAtomIdx(k);
                if (l != i) // i == l: a 3-membered ring
                    visit(i, j, k, l);
            }
        }
    }
}

/// Torsions for which RDKit has parameters: 0.5 (V1 (1 + cos φ) + V2 (1 - cos 2φ) + V3 (1 + cos 3φ)).
void addTorsions(OpenMM::System& system, const TypedMolecule& typed) {
    auto torsions = std::make_unique<OpenMM::PeriodicTorsionForce>();
    forEachTorsion(typed.mol, [&](int i, int j, int k, int l) {
        unsigned int torsionType;
        RDKit::MMFF::MMFFTor params;
        if (!typed.props.getMMFFTorsionParams(typed.mol, i, j, k, l, torsionType, params))
            return;
        if (params.V1 != 0.0)
            torsions->addTorsion(i, j, k, l, 1, 0.0, 0.5 * params.V1 * KJ_PER_KCAL);
        if (params.V2 != 0.0)
            torsions->addTorsion(i, j, k, l, 2, M_PI, 0.5 * params.V2 * KJ_PER_KCAL);
        if (params.V3 != 0.0)
            torsions->addTorsion(i, j, k, l, 3, 0.0, 0.5 * params.V3 * KJ_PER_KCAL);
    });
    const int numTorsions = torsions->getNumTorsions();
    addForce(system, std::move(torsions), numTorsions, typed.periodic, "MMFF94 torsion", 0);
}

/// What the nonbonded steps share: MMFF's partial charges (e), the atoms of each molecule, and the constants of
/// MMFF's buffered Coulomb, 332.0716 qi qj / (D (r + 0.05 Å)), in OpenMM's units.
struct NonbondedSetup {
    std::vector<double> charges;
    std::vector<std::vector<int>> atomsOfMolecule;
    double coulomb;  // kJ nm/mol/e², divided by the dielectric
    double bufferNm; // the buffer δ
};

/// The charges and molecules of `typed`, and the Coulomb constants for `dielectric`.
NonbondedSetup setUpNonbonded(const TypedMolecule& typed, double dielectric) {
    const unsigned int numAtoms = typed.mol.getNumAtoms();
    const std::vector<int> moleculeIndex = moleculeIndexOfAtoms(typed.mol);
    NonbondedSetup setup;
    setup.coulomb = COULOMB_KCAL_ANGSTROM * KJ_PER_KCAL * NM_PER_ANGSTROM / dielectric;
    setup.bufferNm = COULOMB_BUFFER_ANGSTROM * NM_PER_ANGSTROM;
    setup.charges.resize(numAtoms);
    for (unsigned int i = 0; i < numAtoms; ++i)
        setup.charges[i] = typed.props.getMMFFPartialCharge(i);
    const int numMolecules = numAtoms == 0 ? 0 : *std::max_element(moleculeIndex.begin(), moleculeIndex.end()) + 1;
    setup.atomsOfMolecule.resize(numMolecules);
    for (unsigned int i = 0; i < numAtoms; ++i)
        setup.atomsOfMolecule[moleculeIndex[i]].push_back(i);
    return setup;
}

/// Pairs within one molecule that are neither 1-2 nor 1-3: vdW, and electrostatics scaled by 0.75 for 1-4 pairs
/// (group 0, one term per pair, never cut off).  Returns every pair of atoms of one molecule (the exclusions of
/// the intermolecular force).
std::vector<std::pair<int, int>> addIntramolecularNonbonded(OpenMM::System& system, const TypedMolecule& typed,
                                                            const NonbondedSetup& setup) {
    auto vdw = std::make_unique<OpenMM::CustomBondForce>(VDW_EXPRESSION);
    vdw->addPerBondParameter("rs");  // nm
    vdw->addPerBondParameter("eps"); // kJ/mol
    auto electrostatics = std::make_unique<OpenMM::CustomBondForce>("qq/(r + " + number(setup.bufferNm) + ")");
    electrostatics->addPerBondParameter("qq"); // kJ nm/mol: 332.0716 qi qj / D (× 0.75 for 1-4), converted
    const std::vector<double>& charges = setup.charges;
    BondDistances bondDistances(typed.mol);
    std::vector<std::pair<int, int>> intramolecularPairs;
    for (const std::vector<int>& atoms : setup.atomsOfMolecule) {
        for (size_t a = 0; a < atoms.size(); ++a) {
            const int i = atoms[a];
            bondDistances.setSource(i);
            for (size_t b = a + 1; b < atoms.size(); ++b) {
                const int j = atoms[b];
                intramolecularPairs.emplace_back(i, j);
                const int distance = bondDistances.distanceTo(j);
                if (distance < 3)
                    continue;
                RDKit::MMFF::MMFFVdWRijstarEps params;
                if (typed.props.getMMFFVdWParams(i, j, params))
                    vdw->addBond(i, j, {params.R_ij_star * NM_PER_ANGSTROM, params.epsilon * KJ_PER_KCAL});
                // RDKit skips pairs with a zero charge (isDoubleZero: below 1e-10).
                if (std::fabs(charges[i]) < 1e-10 || std::fabs(charges[j]) < 1e-10)
                    continue;
                const double scale = distance == 3 ? SCALE_14_ELECTROSTATICS : 1.0;
                electrostatics->addBond(i, j, {setup.coulomb * charges[i] * charges[j] * scale});
            }
        }
    }
    const int numVdW = vdw->getNumBonds(), numElectrostatics = electrostatics->getNumBonds();
    addForce(system, std::move(vdw), numVdW, typed.periodic, "MMFF94 intramolecular vdW", 0);
    addForce(system, std::move(electrostatics), numElectrostatics, typed.periodic,
             "MMFF94 intramolecular electrostatics", 0);
    return intramolecularPairs;
}

/// R*_ij (nm) and ε_ij (kJ/mol) over the MMFF types present, which they depend on alone: slot s is the s-th type
/// met in atom order, and rstar[a + numSlots b] is the value for slots a and b.
struct VdWTable {
    std::map<int, int> slotOfType;
    int numSlots;
    std::vector<double> rstar, epsilon;
};

/// Tabulates R*_ij and ε_ij, asking RDKit for one representative pair of atoms per pair of types.
VdWTable tabulateVdW(const TypedMolecule& typed) {
    VdWTable table;
    std::vector<int> representative;
    for (unsigned int i = 0; i < typed.mol.getNumAtoms(); ++i)
        if (table.slotOfType.emplace(typed.props.getMMFFAtomType(i), static_cast<int>(representative.size())).second)
            representative.push_back(i);
    const int numSlots = table.numSlots = static_cast<int>(representative.size());
    table.rstar.resize(numSlots * numSlots);
    table.epsilon.resize(numSlots * numSlots);
    for (int a = 0; a < numSlots; ++a) {
        for (int b = 0; b < numSlots; ++b) {
            RDKit::MMFF::MMFFVdWRijstarEps params;
            if (!typed.props.getMMFFVdWParams(representative[a], representative[b], params)) {
                params.R_ij_star = 1.0; // no parameters: no term, as RDKit leaves the pair out
                params.epsilon = 0.0;
            }
            table.rstar[a + numSlots * b] = params.R_ij_star * NM_PER_ANGSTROM;
            table.epsilon[a + numSlots * b] = params.epsilon * KJ_PER_KCAL;
        }
    }
    return table;
}

/// Periodic: CutoffPeriodic at cutoffNm, switched off over [cutoffNm - switchWidthNm, cutoffNm]; else NoCutoff.
/// Never a long-range correction.
void configurePeriodic(OpenMM::CustomNonbondedForce& force, const MMFFOptions& options) {
    if (options.periodic) {
        force.setNonbondedMethod(OpenMM::CustomNonbondedForce::CutoffPeriodic);
        force.setCutoffDistance(options.cutoffNm);
        force.setUseSwitchingFunction(options.switchWidthNm > 0.0);
        if (options.switchWidthNm > 0.0)
            force.setSwitchingDistance(options.cutoffNm - options.switchWidthNm);
    } else {
        force.setNonbondedMethod(OpenMM::CustomNonbondedForce::NoCutoff);
    }
    force.setUseLongRangeCorrection(false);
}

/// Pairs of different molecules: one CustomNonbondedForce (group 1), buffered 14-7 + buffered Coulomb (shifted to
/// zero at the cutoff when periodic), with every intramolecular pair excluded.
void addIntermolecularNonbonded(OpenMM::System& system, const TypedMolecule& typed, const NonbondedSetup& setup,
                                const std::vector<std::pair<int, int>>& intramolecularPairs,
                                const MMFFOptions& options) {
    const VdWTable table = tabulateVdW(typed);
    std::string coulombTerm = number(setup.coulomb) + "*q1*q2*(1/(r + " + number(setup.bufferNm) + ")";
    if (options.periodic)
        coulombTerm += " - " + number(1.0 / (options.cutoffNm + setup.bufferNm));
    coulombTerm += ")";
    auto intermolecular = std::make_unique<OpenMM::CustomNonbondedForce>(
        std::string(VDW_EXPRESSION) + " + " + coulombTerm + "; rs = rstar(type1, type2); eps = epsilon(type1, type2)");
    intermolecular->addPerParticleParameter("type"); // the slot of the atom's MMFF type
    intermolecular->addPerParticleParameter("q");    // MMFF partial charge (e)
    intermolecular->addTabulatedFunction("rstar",
                                         new OpenMM::Discrete2DFunction(table.numSlots, table.numSlots, table.rstar));
    intermolecular->addTabulatedFunction("epsilon",
                                         new OpenMM::Discrete2DFunction(table.numSlots, table.numSlots, table.epsilon));
    for (unsigned int i = 0; i < typed.mol.getNumAtoms(); ++i)
        intermolecular->addParticle(
            {static_cast<double>(table.slotOfType.at(typed.props.getMMFFAtomType(i))), setup.charges[i]});
    for (const auto& [i, j] : intramolecularPairs)
        intermolecular->addExclusion(i, j);
    configurePeriodic(*intermolecular, options);
    intermolecular->setName("MMFF94 intermolecular nonbonded");
    intermolecular->setForceGroup(1);
    system.addForce(intermolecular.release());
}

/// The nonbonded terms: intramolecular pairs in group 0, and, when there are two molecules or more, the
/// intermolecular force in group 1.
void addNonbonded(OpenMM::System& system, const TypedMolecule& typed, const MMFFOptions& options) {
    const NonbondedSetup setup = setUpNonbonded(typed, options.dielectric);
    const std::vector<std::pair<int, int>> intramolecularPairs = addIntramolecularNonbonded(system, typed, setup);
    if (setup.atomsOfMolecule.size() > 1)
        addIntermolecularNonbonded(system, typed, setup, intramolecularPairs, options);
}

} // namespace

std::vector<int> moleculeIndexOfAtoms(const RDKit::ROMol& mol) {
    std::vector<int> mapping;
    if (mol.getNumAtoms() > 0)
        RDKit::MolOps::getMolFrags(mol, mapping);
    return mapping;
}

OpenMM::System* createMMFFSystem(const RDKit::ROMol& inputMol, const MMFFOptions& options, const std::string& name) {
    checkOptions(options, name);
    // RDKit's typer sets MMFF aromaticity on the molecule it is given: work on a copy.
    RDKit::RWMol mol(inputMol);
    // The typer reads the ring info, which RDKit's insertMol (how molecules are joined into one) leaves without
    // the inserted molecules' rings: perceive the rings of the whole molecule again.
    mol.getRingInfo()->reset();
    RDKit::MolOps::findSSSR(mol);
    const std::unique_ptr<RDKit::MMFF::MMFFMolProperties> props = checkAndType(mol, options.variant, name);
    const TypedMolecule typed{mol, *props, options.periodic};

    auto system = std::make_unique<OpenMM::System>();
    addParticles(*system, mol);
    addStretch(*system, typed);
    addBend(*system, typed);
    addStretchBend(*system, typed);
    addOutOfPlane(*system, typed);
    addTorsions(*system, typed);
    addNonbonded(*system, typed, options);
    return system.release();
}

OpenMM::System* createMMFFSystemFromMolBlocks(const std::vector<std::string>& molBlocks,
                                              const std::vector<std::string>& names, const MMFFOptions& options) {
    if (molBlocks.empty())
        throw OpenMMException("createMMFFSystem needs at least one molecule");
    if (names.size() != molBlocks.size())
        throw OpenMMException("createMMFFSystemFromMolBlocks got " + std::to_string(molBlocks.size()) +
                              " mol blocks but " + std::to_string(names.size()) + " names; pass one name per block");
    const std::string allNames = molBlocks.size() == 1 ? names[0] : std::to_string(molBlocks.size()) + " molecules";
    checkOptions(options, allNames);
    // As mrl-envgen joins an environment: the first molecule, then each further one inserted after it.
    std::unique_ptr<RDKit::RWMol> joined;
    for (size_t m = 0; m < molBlocks.size(); ++m) {
        std::unique_ptr<RDKit::RWMol> mol = readMolBlock(molBlocks[m], names[m]);
        RDKit::RWMol copy(*mol);
        checkAndType(copy, options.variant, names[m]);
        if (joined)
            joined->insertMol(*mol);
        else
            joined = std::move(mol);
    }
    return createMMFFSystem(*joined, options, allNames);
}

} // namespace MRLPlugin
