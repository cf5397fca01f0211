# SPDX-License-Identifier: MIT
"""Models that run through MRLForce."""
from .toy import AllPairsMessagePassing, GraphMessagePassing, ToyConfig

__all__ = ["ToyConfig", "GraphMessagePassing", "AllPairsMessagePassing"]
