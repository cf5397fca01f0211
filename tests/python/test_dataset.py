# SPDX-License-Identifier: MIT
"""The dataset format (docs/dataset.md) from Python: DatasetWriter (crash safety), Dataset, DatasetReporter."""
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import h5py
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest

from openmmmrl import Dataset, DatasetReporter, DatasetWriter
from openmmmrl.data import Record, format_version

KJ, NM = unit.kilojoule_per_mole, unit.nanometer
OPTIONS = {"seed": 7, "temperature_K": 300.0}


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------

def make_record(i, key=None):
    """A deterministic record that depends on i: (1 + i % 4) water-like molecules, 1 + i % 3 frames."""
    rng = np.random.default_rng(i)
    m, f = 1 + i % 4, 1 + i % 3
    n = 3 * m
    return Record(
        key=key or f"p{i:04d}/c0", pair_id=f"p{i:04d}", weight=1.0 + i, central_molecule=0,
        atomic_numbers=np.tile([8, 1, 1], m), formal_charges=np.tile([0, 0, 0], m) + (i % 2),
        molecule_index=np.repeat(np.arange(m), 3), anchor=np.where(np.arange(n) < 3, -1, 0),
        smiles=["O"] + ["[OH2]"] * (m - 1), molecule_names=["central"] + ["partner"] * (m - 1),
        is_central=np.array([1] + [0] * (m - 1)),
        bonds=np.concatenate([[[3 * k, 3 * k + 1], [3 * k, 3 * k + 2]] for k in range(m)]),
        bond_orders=np.ones(2 * m), time=np.arange(f) * 0.1 + i, box=rng.normal(size=(f, 3, 3)),
        total_energy=rng.normal(size=f), interaction_energy=rng.normal(size=f),
        positions=rng.normal(size=(f, n, 3)), total_forces=rng.normal(size=(f, n, 3)),
        interaction_forces=rng.normal(size=(f, n, 3)), direction_3dmrl=rng.normal(size=(f, n, 3)))


RECORD_FIELDS = ["atomic_numbers", "formal_charges", "molecule_index", "anchor", "is_central", "bonds",
                 "bond_orders", "time", "box", "total_energy", "interaction_energy", "positions",
                 "total_forces", "interaction_forces", "direction_3dmrl"]


def assert_same_record(got, want):
    want = want.normalized()
    assert (got.key, got.pair_id, got.weight, got.central_molecule) == \
        (want.key, want.pair_id, want.weight, want.central_molecule)
    assert got.smiles == want.smiles and got.molecule_names == want.molecule_names
    for name in RECORD_FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


def water_box(edge_nm=1.5):
    """A periodic TIP3P-FB water box (PME) with the NonbondedForce in group 1, the rest in group 0."""
    ff = app.ForceField("amber14-all.xml", "amber14/tip3pfb.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(ff, boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * NM)
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.PME, nonbondedCutoff=0.7 * NM)
    for force in system.getForces():
        force.setForceGroup(1 if isinstance(force, openmm.NonbondedForce) else 0)
    return modeller.topology, modeller.positions, system


def water_cluster(n_waters=4):
    """A few waters without periodic box (NoCutoff)."""
    topology, positions, _ = water_box()
    modeller = app.Modeller(topology, positions)
    modeller.delete(list(topology.residues())[n_waters:])
    modeller.topology.setPeriodicBoxVectors(None)
    ff = app.ForceField("amber14-all.xml", "amber14/tip3pfb.xml")
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff)
    for force in system.getForces():
        force.setForceGroup(1 if isinstance(force, openmm.NonbondedForce) else 0)
    return modeller.topology, modeller.positions, system


def make_simulation(topology, positions, system, seed=1):
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    return simulation


class Probe:
    """A reporter that asks the Context directly for the state at the same steps as the DatasetReporter."""

    def __init__(self, interval):
        self.interval, self.frames = interval, []

    def describeNextReport(self, simulation):
        return {"steps": self.interval - simulation.currentStep % self.interval, "periodic": False, "include": []}

    def report(self, simulation, state):
        context = simulation.context
        full = context.getState(getPositions=True, getForces=True, getEnergy=True, enforcePeriodicBox=False)
        inter = context.getState(getForces=True, getEnergy=True, groups={1})
        self.frames.append({
            "step": simulation.currentStep, "time": full.getTime().value_in_unit(unit.picosecond),
            "positions": full.getPositions(asNumpy=True).value_in_unit(NM),
            "forces": full.getForces(asNumpy=True).value_in_unit(KJ / NM),
            "energy": full.getPotentialEnergy().value_in_unit(KJ),
            "box": full.getPeriodicBoxVectors(asNumpy=True).value_in_unit(NM),
            "inter_forces": inter.getForces(asNumpy=True).value_in_unit(KJ / NM),
            "inter_energy": inter.getPotentialEnergy().value_in_unit(KJ)})


def recompute(system, positions, box, groups=-1):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of `system` at the given positions, in a fresh Context."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    if system.usesPeriodicBoundaryConditions():
        context.setPeriodicBoxVectors(*[openmm.Vec3(*row) for row in np.asarray(box, float)])
    context.setPositions(np.asarray(positions, float))
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    return state.getPotentialEnergy().value_in_unit(KJ), state.getForces(asNumpy=True).value_in_unit(KJ / NM)


# ----------------------------------------------------------------------------------------------------
# Writer and reader
# ----------------------------------------------------------------------------------------------------

def test_round_trip_layout_and_dtypes(tmp_path):
    path = tmp_path / "out.h5"
    records = [make_record(i) for i in range(5)]
    attributes = {"tool": "test 1", "command_line": "pytest", "options_json": OPTIONS, "force_field": "MMFF94",
                  "temperature_K": 300.0, "timestep_ps": 0.001, "seed": 7, "interaction_forces": "force_groups:1"}
    with DatasetWriter(path, attributes) as writer:
        for rec in records[:3]:
            writer.add_record(rec)
        writer.add_skipped("p9999/c0", "p9999", "invalid SMILES: ünïcode")
        writer.add_record({name: getattr(records[3], name) for name in Record.__dataclass_fields__})
        writer.add_record(records[4])
        assert writer.contains("p0001/c0") and writer.contains("p9999/c0") and not writer.contains("p0005/c0")
        with pytest.raises(ValueError, match="already in"):
            writer.add_record(make_record(1))
    assert not os.path.exists(str(path) + ".journal") and not os.path.exists(str(path) + ".tmp")

    with Dataset(path) as ds:
        assert len(ds) == 5 and ds.keys() == [r.key for r in records]
        assert ds.attributes["format"] == "openmm-mrl-dataset" and ds.attributes["format_version"] == format_version()
        assert json.loads(ds.attributes["options_json"]) == OPTIONS
        assert ds.attributes["seed"] == 7 and ds.attributes["temperature_K"] == 300.0
        assert ds.attributes["interaction_forces"] == "force_groups:1"
        for i, rec in enumerate(records):
            assert_same_record(ds.record(i), rec)
        assert_same_record(ds.record("p0003/c0"), records[3])
        assert ds.skipped() == [("p9999/c0", "p9999", "invalid SMILES: ünïcode")]
        assert ds.num_frames() == sum(r.num_frames for r in records)
        assert list(ds.frame_counts()) == [r.num_frames for r in records]
        frames = list(ds.iter_frames(max_rows=4))  # small blocks: exercises block boundaries
        assert [f["frame"] for f in frames] == list(range(ds.num_frames()))
        k = 0
        for rec in records:
            rec = rec.normalized()
            for j in range(rec.num_frames):
                frame = frames[k]
                k += 1
                assert frame["key"] == rec.key and frame["time"] == rec.time[j]
                for name in ("positions", "total_forces", "interaction_forces", "direction_3dmrl", "box"):
                    np.testing.assert_array_equal(frame[name], getattr(rec, name)[j])
                np.testing.assert_array_equal(frame["is_central_atom"], rec.molecule_index == 0)

    # The file itself, as docs/dataset.md specifies it.
    expected = {
        "records/key": ("str", 1), "records/pair_id": ("str", 1), "records/weight": (np.float64, 1),
        "records/central_molecule": (np.int32, 1), "records/atom_offset": (np.int64, 1),
        "records/molecule_offset": (np.int64, 1), "records/bond_offset": (np.int64, 1),
        "records/frame_offset": (np.int64, 1), "atoms/atomic_number": (np.int32, 1),
        "atoms/formal_charge": (np.int32, 1), "atoms/molecule_index": (np.int32, 1), "atoms/anchor": (np.int32, 1),
        "molecules/smiles": ("str", 1), "molecules/name": ("str", 1), "molecules/is_central": (np.int8, 1),
        "bonds/index": (np.int32, 2), "bonds/order": (np.float32, 1), "frames/time": (np.float64, 1),
        "frames/box": (np.float32, 3), "frames/total_energy": (np.float64, 1),
        "frames/interaction_energy": (np.float64, 1), "frames/atom_offset": (np.int64, 1),
        "frame_atoms/positions": (np.float32, 2), "frame_atoms/total_forces": (np.float32, 2),
        "frame_atoms/interaction_forces": (np.float32, 2), "frame_atoms/direction_3dmrl": (np.float32, 2),
        "skipped/key": ("str", 1), "skipped/pair_id": ("str", 1), "skipped/reason": ("str", 1)}
    with h5py.File(path, "r") as h5:
        for name, (dtype, ndim) in expected.items():
            d = h5[name]
            if dtype == "str":
                info = h5py.check_string_dtype(d.dtype)
                # Format version 3: fixed-length UTF-8 (never HDF5's global heap, see docs/dataset.md).
                assert info is not None and info.encoding == "utf-8" and info.length >= 1, name
            else:
                assert d.dtype == np.dtype(dtype), name
            assert d.ndim == ndim and d.chunks is not None and d.maxshape[0] is None, name
            assert d.compression == (None if name.endswith("offset") else "gzip"), name
            if d.compression:
                assert d.compression_opts == 4
        # Format version 3 stores strings fixed-length: h5py gives them as bytes.
        assert h5["frame_atoms/positions"].attrs["units"] == b"nm"
        assert h5["frame_atoms/total_forces"].attrs["units"] == b"kJ/mol/nm"
        assert h5["frames/total_energy"].attrs["units"] == b"kJ/mol"
        n_atoms = sum(r.num_atoms for r in records)
        assert list(h5["records/atom_offset"]) == list(np.cumsum([0] + [r.num_atoms for r in records]))
        assert h5["frames/atom_offset"][-1] == h5["frame_atoms/positions"].shape[0]
        assert h5["atoms/atomic_number"].shape == (n_atoms,)


def test_reopen_appends_and_checks_options(tmp_path):
    path = tmp_path / "out.h5"
    with DatasetWriter(path, {"options_json": OPTIONS}) as writer:
        writer.add_record(make_record(0))
    # Same options (other key order, other JSON spacing): appends.
    with DatasetWriter(path, {"options_json": '{"temperature_K": 300.0,  "seed": 7}'}) as writer:
        assert writer.contains("p0000/c0")
        writer.add_record(make_record(1))
    with Dataset(path) as ds:
        assert ds.keys() == ["p0000/c0", "p0001/c0"]
    with pytest.raises(ValueError, match=r"different options(.|\n)*\"seed\": 8(.|\n)*overwrite=True"):
        DatasetWriter(path, {"options_json": {"seed": 8, "temperature_K": 300.0}})
    with DatasetWriter(path, {"options_json": {"seed": 8}}, overwrite=True) as writer:
        assert not writer.contains("p0000/c0")
    with Dataset(path) as ds:
        assert len(ds) == 0 and json.loads(ds.attributes["options_json"]) == {"seed": 8}


def test_not_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Dataset(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        Dataset(text)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        DatasetWriter(text, {})
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(ValueError, match="is not an openmm-mrl dataset"):
        Dataset(other)
    with pytest.raises(ValueError, match="is not an openmm-mrl dataset"):
        DatasetWriter(other, {})
    newer = tmp_path / "newer.h5"
    with DatasetWriter(newer, {}):
        pass
    with h5py.File(newer, "a") as h5:
        h5.attrs["format_version"] = format_version() + 1  # a newer format than this release writes
    with pytest.raises(ValueError, match=f"version {format_version() + 1}"):
        Dataset(newer)


def test_bad_records_and_attributes(tmp_path):
    with DatasetWriter(tmp_path / "out.h5", {}) as writer:
        rec = make_record(2)
        rec.total_forces = rec.total_forces[:, :-1]
        with pytest.raises(ValueError, match="total_forces has shape"):
            writer.add_record(rec)
        rec = make_record(2)
        rec.bonds = rec.bonds + 100
        with pytest.raises(ValueError, match="bonds must hold local atom indices"):
            writer.add_record(rec)
        with pytest.raises(ValueError, match="unknown"):
            writer.add_record({"key": "x", "atomic_numbers": [1], "positions": np.zeros((1, 1, 3)), "forces": 1})
        with pytest.raises(ValueError, match="non-empty"):
            writer.add_skipped("", "p", "why")
        # Minimal record: defaults filled in.
        writer.add_record({"key": "minimal", "atomic_numbers": [6, 8], "positions": np.zeros((2, 3))})
    with Dataset(tmp_path / "out.h5") as ds:
        rec = ds.record("minimal")
        assert rec.num_frames == 1 and rec.smiles == [""] and list(rec.anchor) == [-1, -1]
        assert np.isnan(rec.total_forces).all() and (rec.direction_3dmrl == 0).all()
    with pytest.raises(ValueError, match="unknown dataset attributes"):
        DatasetWriter(tmp_path / "x.h5", {"temperature": 300})
    with pytest.raises(ValueError, match="JSON object"):
        DatasetWriter(tmp_path / "x.h5", {"options_json": "[1, 2]"})


def journal_names(journal):
    """{key: file name} of the finished entries of a journal, read from the entries themselves."""
    names = {}
    for name in os.listdir(journal):
        if name.endswith(".h5"):
            with h5py.File(os.path.join(journal, name), "r") as h5:
                for group in ("records", "skipped"):
                    names.update({key: name for key in h5[f"{group}/key"].asstr()[:]})
    return names


def test_crash_states_are_recovered(tmp_path):
    """Every state a crash can leave: unfolded entries, entries already folded but not deleted, a
    half-written entry (.tmp), a half-written fold (OUT.tmp), and a journal without a file."""
    run = tmp_path / "run"
    run.mkdir()
    path = str(run / "out.h5")
    journal = path + ".journal"
    records = [make_record(i) for i in range(6)]
    writer = DatasetWriter(path, {"options_json": OPTIONS})
    for rec in records[:3]:
        writer.add_record(rec)
    writer.add_skipped("p0100/c0", "p0100", "MMFF94 typing failed")
    names = journal_names(journal)  # one journal entry per key, named by the C++ writer
    assert sorted(names) == ["p0000/c0", "p0001/c0", "p0002/c0", "p0100/c0"]
    folded_entries = {name: open(os.path.join(journal, name), "rb").read() for name in os.listdir(journal)}
    writer.fold()
    assert not os.path.exists(journal)
    writer.add_record(records[4])
    writer.add_record(records[3])  # out of key order: the fold sorts
    writer.add_skipped("p0101/c0", "p0101", "exploded")

    # "Kill" now: copy the directory as it is, then damage the copy as an interrupted process would.
    crash = tmp_path / "crash"
    shutil.copytree(run, crash)
    cpath, cjournal = str(crash / "out.h5"), str(crash / "out.h5.journal")
    for key in ("p0001/c0", "p0100/c0"):  # folded, but their deletion was interrupted
        with open(os.path.join(cjournal, names[key]), "wb") as out:
            out.write(folded_entries[names[key]])
    entry = open(os.path.join(cjournal, journal_names(cjournal)["p0003/c0"]), "rb").read()
    with open(os.path.join(cjournal, "p0005_c0.tmp"), "wb") as out:  # an entry cut short
        out.write(entry[: len(entry) // 2])
    with open(cpath + ".tmp", "wb") as out:  # a fold cut short
        out.write(b"\x89HDF\r\n" + b"\0" * 1000)
    writer.close()

    # Readers see the last complete version (and are warned about the journal).
    with pytest.warns(UserWarning, match="unfolded journal"):
        with Dataset(cpath) as ds:
            assert ds.keys() == ["p0000/c0", "p0001/c0", "p0002/c0"]

    # Reopening folds: every finished record once, the damaged leftovers gone.
    with DatasetWriter(cpath, {"options_json": OPTIONS}) as writer:
        assert all(writer.contains(r.key) for r in records[:5]) and not writer.contains("p0005/c0")
        writer.add_record(records[5])
    assert sorted(os.listdir(crash)) == ["out.h5"]
    with Dataset(cpath) as ds:
        assert ds.keys() == [r.key for r in records]
        for rec in records:
            assert_same_record(ds.record(rec.key), rec)
        assert ds.skipped() == [("p0100/c0", "p0100", "MMFF94 typing failed"), ("p0101/c0", "p0101", "exploded")]

    # Killed before the file was first written: the journal alone is enough.
    alone = tmp_path / "alone"
    alone.mkdir()
    os.makedirs(alone / "out.h5.journal")
    for name, data in folded_entries.items():
        (alone / "out.h5.journal" / name).write_bytes(data)
    # A journal written with other options is refused, naming the entry.
    with pytest.raises(ValueError, match=r"journal entry .* different options"):
        DatasetWriter(alone / "out.h5", {"options_json": {"seed": 1}})
    with DatasetWriter(alone / "out.h5", {"options_json": OPTIONS}):
        pass
    with Dataset(alone / "out.h5") as ds:
        assert ds.keys() == ["p0000/c0", "p0001/c0", "p0002/c0"]
        assert [s[0] for s in ds.skipped()] == ["p0100/c0"]


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import openmmmrl.data as ds
    path, n = sys.argv[1], int(sys.argv[2])

    # A hook (MRL_DATASET_CRASH_AT, set by the test) kills the C++ writer with SIGKILL at a chosen moment of
    # a fold: "mid-copy" (OUT.tmp half written), "before-rename" (OUT.tmp complete, not yet renamed),
    # "mid-delete" (renamed, the journal entries only partly deleted).
    writer = ds.DatasetWriter(path, {"options_json": {"test": "sigkill"}}, fold_bytes=400000)
    for i in range(n):
        key = "p%04d/c0" % i
        if writer.contains(key):
            continue
        if i % 7 == 3:
            writer.add_skipped(key, "p%04d" % i, "skip %d" % i)
        else:
            m, f = 1 + i % 4, 1 + i % 3
            writer.add_record(ds.Record(key=key, pair_id="p%04d" % i, atomic_numbers=np.full(3 * m, 8),
                                        positions=np.full((f, 3 * m, 3), float(i)), time=np.full(f, float(i))))
        print(key, flush=True)
    writer.close()
    print("DONE", flush=True)
""")


def test_sigkill_loses_nothing_and_duplicates_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    path = str(tmp_path / "out.h5")
    n = 40
    command = [sys.executable, str(script), path, str(n)]
    expected_records = ["p%04d/c0" % i for i in range(n) if i % 7 != 3]
    expected_skips = ["p%04d/c0" % i for i in range(n) if i % 7 == 3]
    rng = random.Random(2024)
    kills = 0
    for attempt in range(40):
        hooks = ["mid-copy", "before-rename", "mid-delete"]  # first: die at chosen moments of a fold
        env = {**os.environ, "MRL_DATASET_CRASH_AT": hooks[attempt] if attempt < len(hooks) else ""}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        seen = []
        if len(hooks) <= attempt < len(hooks) + 6:  # then: kill after some records, at a random moment
            for _ in range(rng.randint(1, 8)):
                seen.append(process.stdout.readline())
                if seen[-1].strip() in ("", "DONE"):
                    break
            if seen[-1].strip() not in ("", "DONE"):
                time.sleep(rng.uniform(0, 0.03))
                process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=60)
        if process.returncode == 0:
            assert "DONE" in ("".join(seen) + out).split()
            break
        assert process.returncode == -signal.SIGKILL, err
        kills += 1
        # The file is always a complete dataset: a prefix of the keys, each once, content intact.
        if os.path.exists(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the journal of the killed run
                ds = Dataset(path)
            with ds:
                keys = ds.keys()
                assert keys == expected_records[:len(keys)]
                for r in range(len(ds)):
                    rec = ds.record(r)
                    i = int(rec.key[1:5])
                    assert (rec.positions == i).all() and rec.num_atoms == 3 * (1 + i % 4)
                skips = [s[0] for s in ds.skipped()]
                assert skips == expected_skips[:len(skips)]
    else:
        pytest.fail("the writer never finished")
    assert kills >= 6
    assert sorted(os.listdir(tmp_path)) == ["out.h5", "writer.py"]
    with Dataset(path) as ds:
        assert ds.keys() == expected_records
        assert [s[0] for s in ds.skipped()] == expected_skips
        for r in range(len(ds)):
            rec = ds.record(r)
            i = int(rec.key[1:5])
            assert (rec.positions == i).all() and (rec.time == i).all()
            assert rec.num_frames == 1 + i % 3 and rec.num_atoms == 3 * (1 + i % 4)


# ----------------------------------------------------------------------------------------------------
# DatasetReporter
# ----------------------------------------------------------------------------------------------------

def test_reporter_records_what_openmm_computes(tmp_path):
    topology, positions, system = water_box()
    n = system.getNumParticles()
    simulation = make_simulation(topology, positions, system)
    subset = list(range(30, 60)) + [3, 4, 5]  # 11 waters, not in index order
    probe = Probe(5)
    full = DatasetReporter(tmp_path / "full.h5", 5, centralAtoms=[3], interactionGroups={1}, segmentFrames=3)
    part = DatasetReporter(tmp_path / "part.h5", 5, atoms=subset, centralAtoms=[4], interactionGroups=[1],
                           segmentFrames=2)
    simulation.reporters += [probe, full, part]
    simulation.step(20)
    full.close()
    part.close()
    assert [f["step"] for f in probe.frames] == [5, 10, 15, 20]

    with Dataset(tmp_path / "full.h5") as ds:
        assert ds.keys() == ["segment000000", "segment000001"]
        assert list(ds.frame_counts()) == [3, 1]
        attrs = ds.attributes
        assert attrs["tool"].startswith("openmmmrl.DatasetReporter ") and attrs["force_field"] == "user System"
        assert attrs["temperature_K"] == pytest.approx(300) and attrs["timestep_ps"] == pytest.approx(0.002)
        assert attrs["seed"] == -1 and attrs["interaction_forces"] == "force_groups:1"
        options = json.loads(attrs["options_json"])
        assert options["reportInterval"] == 5 and options["interactionGroups"] == [1]
        rec = ds.record(0)
        assert rec.pair_id == "trajectory" and rec.num_atoms == n
        assert list(rec.atomic_numbers[:6]) == [8, 1, 1, 8, 1, 1]
        assert list(rec.molecule_index[:7]) == [0, 0, 0, 1, 1, 1, 2] and rec.num_molecules == n // 3
        assert set(rec.molecule_names) == {"HOH"} and set(rec.smiles) == {""}
        assert list(np.flatnonzero(rec.is_central)) == [1] and rec.central_molecule == 1
        assert (rec.formal_charges == 0).all() and (rec.anchor == -1).all()
        assert len(rec.bonds) == 2 * (n // 3) and list(rec.bonds[0]) == [0, 1]
        frames = [ds.record(0), ds.record(1)]
        stored = {name: np.concatenate([getattr(r, name) for r in frames]) for name in RECORD_FIELDS}
    for f, expected in enumerate(probe.frames):
        assert stored["time"][f] == pytest.approx(expected["time"]) == pytest.approx(0.002 * expected["step"])
        np.testing.assert_array_equal(stored["positions"][f], expected["positions"].astype(np.float32))
        np.testing.assert_array_equal(stored["total_forces"][f], expected["forces"].astype(np.float32))
        np.testing.assert_array_equal(stored["interaction_forces"][f], expected["inter_forces"].astype(np.float32))
        np.testing.assert_array_equal(stored["box"][f], expected["box"].astype(np.float32))
        assert stored["total_energy"][f] == expected["energy"]
        assert stored["interaction_energy"][f] == expected["inter_energy"]
        assert (stored["direction_3dmrl"][f] == 0).all()
        # Independently: a fresh Context at the stored (float32) positions and box.
        energy, forces = recompute(system, stored["positions"][f], stored["box"][f])
        assert energy == pytest.approx(stored["total_energy"][f], rel=1e-5, abs=0.05)
        np.testing.assert_allclose(stored["total_forces"][f], forces, rtol=1e-3, atol=0.5)
        energy, forces = recompute(system, stored["positions"][f], stored["box"][f], groups={1})
        assert energy == pytest.approx(stored["interaction_energy"][f], rel=1e-5, abs=0.05)
        np.testing.assert_allclose(stored["interaction_forces"][f], forces, rtol=1e-3, atol=0.5)
    # Molecules are kept whole: O-H distances are bond lengths, never a box length.
    oh = np.linalg.norm(stored["positions"][:, 0::3] - stored["positions"][:, 1::3], axis=-1)
    assert oh.max() < 0.11

    with Dataset(tmp_path / "part.h5") as ds:
        assert ds.keys() == ["segment000000", "segment000001"]
        rec = ds.record(0)
        assert rec.num_atoms == len(subset) and list(rec.molecule_index[-3:]) == [10, 10, 10]
        assert list(rec.is_central) == [0] * 10 + [1] and rec.central_molecule == 10
        assert len(rec.bonds) == 22 and list(rec.bonds[0]) == [30, 31]
        part_positions = np.concatenate([ds.record(0).positions, ds.record(1).positions])
        part_forces = np.concatenate([ds.record(0).interaction_forces, ds.record(1).interaction_forces])
        assert json.loads(ds.attributes["options_json"])["atoms"] == subset
    np.testing.assert_array_equal(part_positions, stored["positions"][:, subset])
    np.testing.assert_array_equal(part_forces, stored["interaction_forces"][:, subset])


def test_reporter_resume_and_options(tmp_path):
    topology, positions, system = water_cluster(3)
    path = tmp_path / "run.h5"
    simulation = make_simulation(topology, positions, system)
    reporter = DatasetReporter(path, 2, segmentFrames=2, pairId="cluster")
    simulation.reporters.append(reporter)
    simulation.step(10)  # 5 frames: segments 0, 1 and (on close) 2
    reporter.close()
    with pytest.raises(ValueError, match="closed"):
        simulation.step(2)
    simulation.reporters.clear()

    # A new Simulation resumes from a checkpoint; a new reporter continues the numbering.
    checkpoint = simulation.context.createCheckpoint()
    again = make_simulation(topology, positions, system)
    again.context.loadCheckpoint(checkpoint)
    again.currentStep = simulation.currentStep
    with DatasetReporter(path, 2, segmentFrames=2, pairId="cluster") as reporter:
        again.reporters.append(reporter)
        again.step(4)
    with Dataset(path) as ds:
        assert ds.keys() == ["segment%06d" % i for i in range(4)]
        assert list(ds.frame_counts()) == [2, 2, 1, 2]
        times = np.concatenate([ds.record(i).time for i in range(4)])
        np.testing.assert_allclose(times, 0.004 * np.arange(1, 8))
        # Not periodic and no interaction groups: zero box, NaN interaction data.
        rec = ds.record(0)
        assert ds.attributes["interaction_forces"] == "none" and rec.pair_id == "cluster"
        assert (rec.box == 0).all() and np.isnan(rec.interaction_forces).all()
        assert np.isnan(rec.interaction_energy).all() and rec.central_molecule == -1

    # Other settings on the same file: refused at the first step, with the fix.
    other = make_simulation(topology, positions, system)
    other.reporters.append(DatasetReporter(path, 3, segmentFrames=2, pairId="cluster"))
    with pytest.raises(ValueError, match="different options(.|\n)*overwrite=True"):
        other.step(3)
    other.reporters[:] = [DatasetReporter(path, 3, segmentFrames=2, overwrite=True)]
    other.step(3)
    other.reporters[0].close()
    with Dataset(path) as ds:
        assert ds.keys() == ["segment000000"]


def test_reporter_whole_system_forces_when_integrating_some_groups(tmp_path):
    topology, positions, system = water_cluster(4)
    simulation = make_simulation(topology, positions, system)
    simulation.integrator.setIntegrationForceGroups({0})  # the Simulation's state then lacks group 1
    probe = Probe(3)
    reporter = DatasetReporter(tmp_path / "out.h5", 3, interactionGroups={1},
                               molecules=[{"atoms": [0, 1, 2], "name": "central", "smiles": "O"},
                                          list(range(3, 12))])
    simulation.reporters += [probe, reporter]
    simulation.step(6)
    reporter.close()
    with Dataset(tmp_path / "out.h5") as ds:
        rec = ds.record(0)
    assert rec.molecule_names == ["central", "HOH..HOH (3 residues)"] and rec.smiles == ["O", ""]
    assert list(rec.molecule_index) == [0] * 3 + [1] * 9
    for f, expected in enumerate(probe.frames):
        assert rec.total_energy[f] == expected["energy"]
        np.testing.assert_array_equal(rec.total_forces[f], expected["forces"].astype(np.float32))
        np.testing.assert_array_equal(rec.interaction_forces[f], expected["inter_forces"].astype(np.float32))


ATEXIT_SCRIPT = textwrap.dedent("""
    import sys
    import openmm, openmm.app as app, openmm.unit as unit
    from openmmmrl import DatasetReporter
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    bond = openmm.HarmonicBondForce()
    bond.addBond(0, 1, 0.1, 1000.0)
    system.addForce(bond)
    topology = app.Topology()
    residue = topology.addResidue("H2", topology.addChain())
    a = topology.addAtom("H1", app.element.hydrogen, residue)
    b = topology.addAtom("H2", app.element.hydrogen, residue)
    topology.addBond(a, b)
    simulation = app.Simulation(topology, system, openmm.VerletIntegrator(0.001),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions([openmm.Vec3(0, 0, 0), openmm.Vec3(0.11, 0, 0)])
    simulation.reporters.append(DatasetReporter(sys.argv[1], 1, segmentFrames=1000))
    simulation.step(7)
    # no close(): the frames are written at exit
""")


def test_reporter_writes_buffered_frames_at_exit(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(ATEXIT_SCRIPT)
    subprocess.run([sys.executable, str(script), str(tmp_path / "out.h5")], check=True)
    with Dataset(tmp_path / "out.h5") as ds:
        assert ds.keys() == ["segment000000"] and ds.num_frames() == 7
        rec = ds.record(0)
        assert rec.molecule_names == ["H2"] and list(rec.atomic_numbers) == [1, 1]
        assert list(rec.bonds[0]) == [0, 1] and math.isnan(ds.attributes["temperature_K"])  # Verlet: unknown
        np.testing.assert_allclose(rec.time, 0.001 * np.arange(1, 8))
        # Harmonic bond: E = k/2 (r - r0)^2 at the stored positions.
        r = np.linalg.norm(rec.positions[:, 1] - rec.positions[:, 0], axis=-1)
        np.testing.assert_allclose(rec.total_energy, 500.0 * (r - 0.1) ** 2, rtol=1e-4, atol=1e-6)


def test_reporter_argument_errors(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(ValueError, match="reportInterval must be a positive integer"):
        DatasetReporter(path, 0)
    with pytest.raises(ValueError, match="segmentFrames must be a positive integer"):
        DatasetReporter(path, 10, segmentFrames=-1)
    with pytest.raises(ValueError, match="negative"):
        DatasetReporter(path, 10, atoms=[0, -1])
    with pytest.raises(ValueError, match="more than once"):
        DatasetReporter(path, 10, atoms=[0, 1, 1])
    with pytest.raises(ValueError, match="not among the recorded atoms"):
        DatasetReporter(path, 10, atoms=[0, 1, 2], centralAtoms=[5])
    with pytest.raises(ValueError, match="0..31"):
        DatasetReporter(path, 10, interactionGroups={32})
    with pytest.raises(ValueError, match="'atoms'"):
        DatasetReporter(path, 10, molecules=[{"name": "x"}])
    topology, positions, system = water_cluster(2)
    for reporter, message in [(DatasetReporter(path, 2, atoms=[0, 1, 6]), r"atoms \[6\] are out of range"),
                              (DatasetReporter(path, 2, interactionGroups={5}),
                               r"interactionGroups \[5\] hold no Force(.|\n)*setForceGroup"),
                              (DatasetReporter(path, 2, molecules=[[0, 1, 2]]), "in none of the given molecules")]:
        simulation = make_simulation(topology, positions, system)
        simulation.reporters.append(reporter)
        with pytest.raises(ValueError, match=message):
            simulation.step(2)
    assert not os.path.exists(path)


# ----------------------------------------------------------------------------------------------------
# The layout has one definition (tools/include/MRLDatasetLayout.h)
# ----------------------------------------------------------------------------------------------------

def docs_layout():
    """The rows of the layout table of docs/dataset.md: {"/group/name": (shape, dtype, units)}."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dataset.md"), encoding="utf-8").read()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`/"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2], cells[3].strip("`"))
    return rows


def docs_label_set_layout():
    """The rows of the label-set table of docs/dataset.md: {name: (shape, dtype, units)}."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dataset.md"), encoding="utf-8").read()
    table = text[text.index("| label dataset |"):].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2], cells[3].strip("`"))
    return rows


def test_docs_show_the_label_set_layout():
    from openmmmrl.data import layout
    documented = docs_label_set_layout()
    table = {name: (shape, dtype, units) for _, name, dtype, shape, _, units in layout("NAME")}
    assert sorted(documented) == sorted(table)
    for name, (shape, dtype, units) in table.items():
        assert documented[name][1:] == (dtype, units), name
        assert documented[name][0].strip("[]").split(",")[1:] == [str(n) for n in shape], name


def test_docs_show_the_layout():
    """docs/dataset.md's table, the C++ layout table and a written file agree, dataset by dataset."""
    from openmmmrl.data import layout
    documented = docs_layout()
    table = {f"/{group}/{name}": (shape, dtype, units) for group, name, dtype, shape, _, units in layout()}
    assert sorted(documented) == sorted(table)
    for name, (shape, dtype, units) in table.items():
        doc_shape, doc_dtype, doc_units = documented[name]
        assert doc_dtype == dtype and doc_units == units, name
        assert doc_shape.strip("[]").split(",")[1:] == [str(n) for n in shape], name


def test_written_file_follows_the_layout(tmp_path):
    from openmmmrl.data import layout
    with DatasetWriter(tmp_path / "out.h5", {"options_json": OPTIONS}) as writer:
        writer.add_record(make_record(0))
    with h5py.File(tmp_path / "out.h5", "r") as h5:
        names = set()
        h5.visititems(lambda name, item: names.add("/" + name) if isinstance(item, h5py.Dataset) else None)
        assert names == {f"/{g}/{n}" for g, n, *_ in layout()}
        for group, name, dtype, shape, offset, units in layout():
            d = h5[f"{group}/{name}"]
            assert d.shape[1:] == shape and d.attrs.get("units", b"").decode() == units, name
            assert (h5py.check_string_dtype(d.dtype) is not None) if dtype == "str" else d.dtype == np.dtype(dtype)
            assert (d.compression is None) == offset, name


def test_reader_names_a_damaged_dataset(tmp_path):
    path = tmp_path / "out.h5"
    with DatasetWriter(path, {"options_json": OPTIONS}) as writer:
        writer.add_record(make_record(0))
    with h5py.File(path, "a") as h5:
        del h5["frame_atoms/total_forces"]
        h5.create_dataset("frame_atoms/total_forces", data=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"damaged openmm-mrl dataset: /frame_atoms/total_forces is float32\[3, 2\]"):
        Dataset(path)


# ----------------------------------------------------------------------------------------------------
# Format version 2: label sets; version 1 files still read
# ----------------------------------------------------------------------------------------------------

def labelled(record, scale):
    """The record with a label set "xtb" whose values are the record's own times `scale` (known values)."""
    rec = record.normalized()
    rec.labels = {"xtb": {"total_energy": rec.total_energy * scale, "interaction_energy": rec.interaction_energy * scale,
                          "total_forces": rec.total_forces * scale, "interaction_forces": rec.interaction_forces * scale}}
    return rec


def test_label_sets_round_trip(tmp_path):
    path = tmp_path / "labelled.h5"
    records = [labelled(make_record(i), 1.5 + i) for i in range(3)]
    with DatasetWriter(path, {"options_json": OPTIONS, "label_sets": {"xtb": "GFN2-xTB (test)"}}) as writer:
        for rec in records:
            writer.add_record(rec)
        with pytest.raises(ValueError, match=r"label sets \[\] but the file has \[xtb\]"):
            writer.add_record(make_record(7))
    with Dataset(path) as ds:
        assert ds.label_sets == {"xtb": "GFN2-xTB (test)"} and ds.attributes["format_version"] == format_version()
        for rec in records:
            got = ds.record(rec.key)
            for field in ("total_energy", "interaction_energy", "total_forces", "interaction_forces"):
                np.testing.assert_array_equal(got.labels["xtb"][field], rec.labels["xtb"][field].astype(
                    got.labels["xtb"][field].dtype), err_msg=field)
        frames = list(ds.iter_frames())
        expected = [(rec.labels["xtb"]["total_energy"][j], rec.labels["xtb"]["total_forces"][j])
                    for rec in records for j in range(rec.num_frames)]
        assert len(frames) == len(expected) > 3
        for frame, (energy, forces) in zip(frames, expected):
            assert frame["labels"]["xtb"]["total_energy"] == energy
            np.testing.assert_array_equal(frame["labels"]["xtb"]["total_forces"], forces.astype(np.float32))
    # Reopening with other label sets is refused; the file is unchanged.
    before = open(path, "rb").read()
    with pytest.raises(ValueError, match="other label sets"):
        DatasetWriter(path, {"options_json": OPTIONS, "label_sets": {"dft": "other"}})
    assert open(path, "rb").read() == before
    with pytest.raises(ValueError, match="label set name"):
        DatasetWriter(tmp_path / "bad.h5", {"label_sets": {"a/b": "x"}})


def test_version_3_files_keep_no_string_in_the_global_heap_and_checksum_their_metadata(tmp_path):
    """Format version 3: every string (columns and attributes) is fixed-length, so nothing lives in HDF5's global
    heap (whose reader hangs on damaged bytes: tests/fuzz/third-party/), and the file uses HDF5 1.10's format, whose
    metadata carries checksums.  A string longer than its column widens the column; the rows before stay."""
    path = tmp_path / "v3.h5"
    long_smiles = "C" * 300 + "O"
    with DatasetWriter(path, {"options_json": OPTIONS}) as writer:
        writer.add_record(make_record(0))
        record = make_record(1)
        record.smiles = [long_smiles] + record.smiles[1:]
        writer.add_record(record)
        writer.add_skipped("p0002/c0", "p2", "a reason " * 40)
    with h5py.File(path, "r") as h5:
        assert h5.id.get_create_plist().get_version()[0] >= 2  # superblock version 2 or later: checksummed
        strings = []

        def visit(name, item):
            for key in item.attrs:
                strings.append((f"{name}@{key}", item.attrs.get_id(key).dtype))
            if isinstance(item, h5py.Dataset) and h5py.check_string_dtype(item.dtype) is not None:
                strings.append((name, item.dtype))
        for key in h5.attrs:
            strings.append((f"@{key}", h5.attrs.get_id(key).dtype))
        h5.visititems(visit)
        text = [(name, dtype) for name, dtype in strings if dtype.kind in "SOU"]
        assert text and all(dtype.kind == "S" for _, dtype in text), [t for t in text if t[1].kind != "S"]
        assert h5["molecules/smiles"].dtype.itemsize >= len(long_smiles)
    with Dataset(path) as ds:
        assert ds.attributes["format_version"] == format_version() == 3
        assert ds.record(0).smiles == make_record(0).smiles  # written before the column widened
        assert ds.record(1).smiles[0] == long_smiles
        assert ds.skipped() == [("p0002/c0", "p2", "a reason " * 40)]  # trailing blanks kept, only NULs pad


def test_version_2_files_still_read_and_resume(tmp_path):
    """tests/data/dataset-v2.h5 was written by the format-2 writer of this project (variable-length strings, commit
    183821f, /tmp/make_v2.py of that session: 2 records, a label set, 1 skip).  A resumed run appends to it in its
    own format; mrl-envgen merge rewrites it as version 3."""
    source = os.path.join(os.path.dirname(__file__), "..", "data", "dataset-v2.h5")
    with Dataset(source) as ds:
        assert ds.attributes["format_version"] == 2 and ds.label_sets == {"gfn2": "GFN2-xTB (tblite 0.8.0)"}
        assert ds.keys() == ["p0000/c0", "p0001/c0"] and ds.skipped() == [("p0009/c0", "p9", "SCF did not converge")]
        rec = ds.record(1)
        np.testing.assert_array_equal(rec.labels["gfn2"]["interaction_energy"], [-1.0, -3.0])
        np.testing.assert_array_equal(rec.total_energy, [-2.0, -3.0])
        assert rec.smiles == ["O", "O"] and rec.molecule_names == ["central", "partner"]
    copy = tmp_path / "v2.h5"
    shutil.copy(source, copy)
    extra = make_record(5, key="p0005/c0")
    extra.labels = {"gfn2": {name: getattr(extra, name) for name in
                             ("total_energy", "interaction_energy", "total_forces", "interaction_forces")}}
    with DatasetWriter(copy, {"options_json": '{"seed": 5}', "label_sets": {"gfn2": "GFN2-xTB (tblite 0.8.0)"}}) as w:
        w.add_record(extra)
    with Dataset(copy) as ds:
        assert ds.attributes["format_version"] == 2 and len(ds) == 3
        assert_same_record(ds.record("p0005/c0"), extra)
        assert ds.record(1).smiles == ["O", "O"]


def test_version_1_files_still_read():
    """tests/data/dataset-v1.h5 was written by the format-1 writer of openmm-mrl 0.1.0 (python/openmmmrl/dataset.py
    at commit 8b5cddf): 2 records, 1 skip, known values."""
    path = os.path.join(os.path.dirname(__file__), "..", "data", "dataset-v1.h5")
    with Dataset(path) as ds:
        assert ds.attributes["format_version"] == 1 and ds.label_sets == {}
        assert ds.keys() == ["p0000/c0", "p0001/c0"] and ds.skipped() == [("p0009/c0", "p9", "MMFF94 typing failed")]
        rec = ds.record(1)
        assert rec.num_atoms == 5 and rec.num_frames == 2 and rec.labels == {}
        np.testing.assert_array_equal(rec.total_energy, [-0.5, -1.5])
        np.testing.assert_array_equal(rec.positions.reshape(-1), np.arange(30, dtype=np.float32) / 10)
        assert (rec.total_forces == 2).all() and rec.smiles == ["O", "C"]
        assert [f["labels"] for f in ds.iter_frames()] == [{}] * 4
