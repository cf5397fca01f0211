# SPDX-License-Identifier: MIT
"""Models that run through MRLForce."""
from .toy import DenseMessagePassing, GraphMessagePassing, ToyConfig

__all__ = ["ToyConfig", "GraphMessagePassing", "DenseMessagePassing"]
