# SPDX-License-Identifier: MIT
"""``python -m openmmmrl.evaluate``: the command ``mrl-evaluate`` (see :mod:`openmmmrl.head.evaluate`)."""
from openmmmrl.head.evaluate import main

if __name__ == "__main__":
    main()
