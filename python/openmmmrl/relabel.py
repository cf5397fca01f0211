# SPDX-License-Identifier: MIT
"""``python -m openmmmrl.relabel``: the command ``mrl-relabel`` (see :mod:`openmmmrl.labels.relabel`)."""
import sys

from openmmmrl.labels.relabel import main

if __name__ == "__main__":
    sys.exit(main())
