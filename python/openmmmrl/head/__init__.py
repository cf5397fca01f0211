# SPDX-License-Identifier: MIT
"""The equivariant force head, in layers (each imports only those above it in this list):

- ``model``    : ``HeadConfig``, ``ForceHead`` (trunk and heads), ``InteractionHead`` (the intermolecular
  energy, exactly 0 for a molecule alone), the exported wrappers, the 2D encoder and projection of the
  contrastive objective, and ``Model`` (everything that trains);
- ``batch``    : ``Frame`` and ``load_frames`` (datasets in memory), the split by central molecule,
  ``neighbor_edges`` and ``make_batch``;
- ``predict``  : ``predict``, the energies, total forces and interaction forces of a batch;
- ``losses``   : one loss per training objective and ``total_loss``, which weighs them;
- ``plots``    : PNG plots of arrays (matplotlib);
- ``md``       : OpenMM Systems computed by a head through ``MRLForce``, and stability checks;
- ``train``, ``export``, ``evaluate`` : the commands ``mrl-train``, ``mrl-export``, ``mrl-evaluate``.

``import openmmmrl.head`` imports none of them.
"""
