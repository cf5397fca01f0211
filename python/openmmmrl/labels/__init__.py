# SPDX-License-Identifier: MIT
"""Labels from other methods than a dataset's own: GFN2-xTB through tblite (``xtb``), and the relabel
command that adds them to a dataset as a label set (``relabel``; ``python -m openmmmrl.relabel``)."""
