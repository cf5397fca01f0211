# SPDX-License-Identifier: MIT
"""The compiled dataset module (``openmmmrl.dataset_core``): the C++ writer and the layout table."""


def core():
    """``openmmmrl.dataset_core``, with an ImportError that says how to get it."""
    try:
        from .. import dataset_core
    except ImportError as e:
        raise ImportError(f"openmmmrl.data needs the compiled module openmmmrl.dataset_core (the C++ dataset writer "
                          f"and layout), which did not import ({e}); build and install it with ./test.sh or "
                          f"scripts/setup.sh") from None
    return dataset_core
