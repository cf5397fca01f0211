# SPDX-License-Identifier: MIT
"""``python -m openmmmrl.export``: the command ``mrl-export`` (see :mod:`openmmmrl.head.export`)."""
from openmmmrl.head.export import main

if __name__ == "__main__":
    main()
