# SPDX-License-Identifier: MIT
import os
import subprocess
import sys
import warnings

import pytest

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The test models of tests/models/make_models.py, written fresh for this session."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "models", "make_models.py"), str(out)], check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return out


HEAD_PAIRS = [  # four different central molecules, so that train/validation/test splits are possible
    ("CC(=O)Nc1ccc(O)cc1", "O", "paracetamol-water"),
    ("CS(C)=O", "ClC(Cl)Cl", "dmso-chloroform"),
    ("c1ccncc1", "CO", "pyridine-methanol"),
    ("OC(=O)c1ccccc1O", "CCO", "salicylic-ethanol"),
    ("Cc1ccccc1", "CC#N", "toluene-acetonitrile"),
]


@pytest.fixture(scope="session")
def head_data(tmp_path_factory):
    """A small real dataset from mrl-envgen build (5 pairs, 2 conformers, 12 frames each) for training tests."""
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    if not os.path.exists(envgen):
        pytest.skip(f"{envgen} is not installed (run scripts/setup.sh)")
    out = tmp_path_factory.mktemp("head_data")
    pairs = out / "pairs.csv"
    pairs.write_text("central,partner,id\n" + "".join(f"{a},{b},{n}\n" for a, b, n in HEAD_PAIRS))
    subprocess.run([envgen, "build", str(pairs), "--output", str(out / "envs.h5"), "--copies", "3",
                    "--conformers", "2", "--equilibration", "100", "--steps", "240", "--interval", "20",
                    "--temperature", "400", "--seed", "3", "--quiet"], check=True, capture_output=True)
    return out / "envs.h5"
