# SPDX-License-Identifier: MIT
"""Export a trained force head as a "graph/1" TorchScript model file for MRLForce.

    python -m openmmmrl.export runs/head/best.pt --output models/head.pt
    python -m openmmmrl.export runs/head/best.pt --output head_direct.pt --direct-forces

The model returns the energy (kJ/mol) and MRLForce takes the forces as -dE/dx (conservative).  With
--direct-forces it also returns the direct force head's forces (kJ/mol/nm), which MRLForce uses as
they are: faster, but not conservative (energy is not conserved in NVE).  The file's `mrl_metadata`
attribute holds the settings, statistics and split of the training run as JSON.
"""
import argparse
import json
import os
import sys

import torch

from .model import ExportedDirectForceHead, ExportedHead, ForceHead, HeadConfig


def load_head(checkpoint_path: str) -> ForceHead:
    """The force head of a training checkpoint (float32, eval mode)."""
    if not os.path.exists(checkpoint_path):
        raise FileNotFoundError(f"{checkpoint_path}: no such checkpoint; train one with python -m openmmmrl.train")
    state = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    if "config" not in state or "model" not in state:
        raise ValueError(f"{checkpoint_path} is not a checkpoint of python -m openmmmrl.train")
    head = ForceHead(HeadConfig.from_dict(state["config"]))
    prefix = "head."
    head.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    return head.eval()


def metadata(checkpoint_path: str) -> dict:
    state = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    last = state["history"][-1] if state.get("history") else {}
    return {"format": "openmm-mrl force head", "config": state["config"], "options": state.get("options"),
            "statistics": state.get("statistics"), "split": state.get("split"), "epoch": state.get("epoch"),
            "validation": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
            "checkpoint": os.path.abspath(checkpoint_path)}


def export(checkpoint_path: str, output: str, direct_forces: bool = False) -> torch.jit.ScriptModule:
    """Scripts the checkpoint's head and saves it to ``output`` (atomically); returns the module."""
    head = load_head(checkpoint_path)
    text = json.dumps(metadata(checkpoint_path))
    wrapper = ExportedDirectForceHead(head, text) if direct_forces else ExportedHead(head, text)
    module = torch.jit.script(wrapper.eval())
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    tmp = output + ".tmp"
    torch.jit.save(module, tmp)
    os.replace(tmp, output)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m openmmmrl.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="best.pt or checkpoint.pt of python -m openmmmrl.train")
    parser.add_argument("--output", required=True, help="the TorchScript model file to write")
    parser.add_argument("--direct-forces", action="store_true",
                        help="return the direct force head's forces too (outputs_forces; not conservative)")
    args = parser.parse_args(argv)
    try:
        export(args.checkpoint, args.output, args.direct_forces)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    size = os.path.getsize(args.output)
    print(f"wrote {args.output} ({size / 1e6:.2f} MB, graph/1, "
          f"{'direct forces' if args.direct_forces else 'conservative forces'})", file=sys.stderr)


if __name__ == "__main__":
    main()
