# SPDX-License-Identifier: MIT
"""``python -m openmmmrl.train``: the command ``mrl-train`` (see :mod:`openmmmrl.head.train`)."""
from openmmmrl.head.train import main

if __name__ == "__main__":
    main()
