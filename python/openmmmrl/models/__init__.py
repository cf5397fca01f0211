# SPDX-License-Identifier: MIT
"""Models that run through MRLForce: the equivariant force head and the toy stand-in network."""
from .painn import (EquivariantTrunk, ExportedDirectForceHead, ExportedHead, ForceHead, GraphEncoder2D, HeadConfig,
                    Projection3D)
from .toy import AllPairsMessagePassing, GraphMessagePassing, ToyConfig

__all__ = ["ToyConfig", "GraphMessagePassing", "AllPairsMessagePassing", "HeadConfig", "ForceHead",
           "EquivariantTrunk", "ExportedHead", "ExportedDirectForceHead", "GraphEncoder2D", "Projection3D"]
