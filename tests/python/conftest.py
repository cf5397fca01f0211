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
