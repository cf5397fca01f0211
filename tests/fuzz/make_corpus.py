# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from real files: TorchScript models of
tests/models/make_models.py, their MRLForce XML (XmlSerializer), DCD files written by OpenMM's DCDFile, a PDB
written by OpenMM's PDBFile, a State XML, and a dataset written by mrl-envgen build (one record, one skip).
The seeds are committed; rerun after a format change:

    .venv/bin/python tests/fuzz/make_corpus.py tests/fuzz/corpus
"""
import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import openmm
import openmm.app as app
import torch
from openmm import unit

HERE = Path(__file__).resolve().parent


def load_models_module():
    spec = importlib.util.spec_from_file_location("make_models", HERE.parent / "models" / "make_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_bytes(cls) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(cls()), buffer)
    return buffer.getvalue()


def write(path: Path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    print(f"{path} ({path.stat().st_size} bytes)")


def model_seeds(out: Path):
    models = load_models_module()
    for name in ("PairGraph", "PairPositions", "HarmonicWithForces", "InterMolecularGraph"):
        write(out / "modelbytes" / f"{name}.pt", model_bytes(getattr(models, name)))
    write(out / "modelbytes" / "text.txt", "this is a text file, not a TorchScript archive\n")
    from openmmmrl import MRLForce
    graph = MRLForce(model_bytes(models.PairGraph))
    graph.setAtomicNumbers([6, 1, 8, 1])
    graph.setMoleculeIndices([0, 0, 1, 1])
    graph.setParticles([0, 1, 2, 3])
    write(out / "mrlforcexml" / "graph.xml", openmm.XmlSerializer.serialize(graph))
    positions = MRLForce(model_bytes(models.ScaledPair))
    positions.addGlobalParameter("scale", 0.5)
    positions.addGlobalParameter("shift", 1.0)
    positions.addEnergyParameterDerivative("scale")
    write(out / "mrlforcexml" / "positions.xml", openmm.XmlSerializer.serialize(positions))
    periodic = MRLForce(model_bytes(models.PairPositionsPeriodic))
    periodic.setUsesPeriodicBoundaryConditions(True)
    write(out / "mrlforcexml" / "periodic.xml", openmm.XmlSerializer.serialize(periodic))


def trajectory_seeds(out: Path):
    topology = app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("HOH", chain)
    o = topology.addAtom("O", app.element.oxygen, residue)
    topology.addAtom("H1", app.element.hydrogen, residue)
    topology.addAtom("H2", app.element.hydrogen, residue)
    residue = topology.addResidue("MOL", chain)
    topology.addAtom("C1", app.element.carbon, residue)
    positions = [openmm.Vec3(0.0, 0.0, 0.0), openmm.Vec3(0.096, 0, 0), openmm.Vec3(-0.024, 0.093, 0),
                 openmm.Vec3(0.3, 0.3, 0.3)] * unit.nanometer
    for periodic in (False, True):
        topology.setPeriodicBoxVectors(((1.5, 0, 0), (0, 1.6, 0), (0.2, 0, 1.7)) * unit.nanometer if periodic else None)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "t.dcd")
            with open(path, "wb") as f:
                dcd = app.DCDFile(f, topology, 0.002 * unit.picosecond, firstStep=100, interval=50)
                for _ in range(2):
                    dcd.writeModel(positions, periodicBoxVectors=topology.getPeriodicBoxVectors())
            write(out / "dcd" / ("periodic.dcd" if periodic else "cluster.dcd"), Path(path).read_bytes())
    text = io.StringIO()
    app.PDBFile.writeFile(topology, positions, text)
    write(out / "pdb" / "water-methane.pdb", text.getvalue())
    system = openmm.System()
    for _ in range(4):
        system.addParticle(1.0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    write(out / "pdb" / "state.xml", openmm.XmlSerializer.serialize(context.getState(getPositions=True)))


def dataset_seeds(out: Path):
    envgen = Path(sys.executable).parent / "mrl-envgen"
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.csv"
        pairs.write_text("central,partner,id\nO,O,water-water\nC1CC,O,broken\n")
        data = Path(tmp) / "seed.h5"
        subprocess.run([str(envgen), "build", str(pairs), "--output", str(data), "--copies", "1", "--equilibration",
                        "10", "--steps", "20", "--interval", "10", "--seed", "1", "--quiet"], check=True,
                       capture_output=True)
        write(out / "dataset" / "water-water.h5", data.read_bytes())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="the corpus directory (tests/fuzz/corpus)")
    out = Path(parser.parse_args(argv).output)
    model_seeds(out)
    trajectory_seeds(out)
    dataset_seeds(out)


if __name__ == "__main__":
    main()
