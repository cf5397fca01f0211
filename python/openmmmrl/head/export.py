# SPDX-License-Identifier: MIT
"""Export a trained force head as a "graph/1" TorchScript model file for MRLForce.

    python -m openmmmrl.export runs/head/best.pt --output models/head.pt
    python -m openmmmrl.export runs/head/best.pt --output head_direct.pt --direct-forces
    python -m openmmmrl.export runs/delta/best.pt --output delta.pt     # an interaction head (--model interaction)

The model returns the energy (kJ/mol) and MRLForce takes the forces as -dE/dx (conservative).  With
--direct-forces it also returns the direct force head's forces (kJ/mol/nm), which MRLForce uses as
they are: faster, but not conservative (energy is not conserved in NVE).  The checkpoint of an
interaction head exports its intermolecular energy (exactly 0 for a molecule alone), to add to a force
field's System.  The file's `mrl_metadata` attribute holds, as JSON, the interface, cutoff and element
range, the label set, and the settings, statistics and split of the training run.
"""
import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Tuple, TypeVar

import torch

from .model import (TRUNK_SETTINGS, EquivariantTrunk, ExportedDirectForceHead, ExportedHead, ForceHead, HeadConfig,
                    InteractionConfig, InteractionHead)

#: The kinds of model a checkpoint holds (its "kind"; checkpoints without one hold a force head).
KINDS = {"force": (ForceHead, HeadConfig), "interaction": (InteractionHead, InteractionConfig)}
Settings = TypeVar("Settings", HeadConfig, InteractionConfig)


def read_checkpoint(checkpoint_path: str) -> dict:
    """The contents of a checkpoint of python -m openmmmrl.train (checked)."""
    if not os.path.exists(checkpoint_path):
        raise FileNotFoundError(f"{checkpoint_path}: no such checkpoint; train one with python -m openmmmrl.train")
    state = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    if "config" not in state or "model" not in state or state.get("kind", "force") not in KINDS:
        raise ValueError(f"{checkpoint_path} is not a checkpoint of python -m openmmmrl.train")
    return state


def load_model(checkpoint_path: str, kind: str = "") -> torch.nn.Module:
    """The head of a training checkpoint, a ``ForceHead`` or an ``InteractionHead`` (float32, eval mode);
    ``kind`` ("force" or "interaction") requires that kind."""
    state = read_checkpoint(checkpoint_path)
    found = state.get("kind", "force")
    if kind and found != kind:
        raise ValueError(f"{checkpoint_path} holds a {found} head, not a {kind} head")
    model_class, config_class = KINDS[found]
    head = model_class(config_class.from_dict(state["config"]))
    prefix = "head."
    head.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    return head.eval()


def load_head(checkpoint_path: str) -> ForceHead:
    """The force head of a training checkpoint (float32, eval mode)."""
    return load_model(checkpoint_path, "force")


def pretrained_trunk(checkpoint_path: str) -> Tuple[dict, EquivariantTrunk]:
    """The trunk of a training checkpoint (a force head's or an interaction head's) and its settings
    (``TRUNK_SETTINGS``: features, layers, radial basis, cutoff, element range)."""
    state = read_checkpoint(checkpoint_path)
    return {k: state["config"][k] for k in TRUNK_SETTINGS}, load_model(checkpoint_path).trunk


def with_pretrained_trunk(model: torch.nn.Module, config: Settings, checkpoint_path: str) -> Tuple[torch.nn.Module, Settings]:
    """The pretrain-then-fine-tune start: ``model(config')`` with its trunk's weights those of the
    checkpoint, where config' is ``config`` with the checkpoint's trunk settings; the other parts (e.g.
    an interaction head's pair MLP) are new.  ``model`` is a class (``InteractionHead``, ``ForceHead``,
    ``InteractionModel``, ``Model``) whose instances have ``trunk`` or ``head.trunk``."""
    settings, trunk = pretrained_trunk(checkpoint_path)
    config = replace(config, **settings)
    built = model(config)
    (built.trunk if hasattr(built, "trunk") else built.head.trunk).load_state_dict(trunk.state_dict())
    return built, config


def head_metadata(head: torch.nn.Module, config: dict) -> dict:
    """What a model file says about its head: interface, cutoff (nm), element range, label set, settings."""
    interaction = isinstance(head, InteractionHead)
    return {"format": "openmm-mrl interaction head" if interaction else "openmm-mrl force head",
            "mrl_interface": head.mrl_interface, "cutoff_nm": head.cutoff_nm,
            "elements": [1, head.trunk.max_atomic_number],
            "label_set": config.get("label_set", "interaction" if interaction else "total"),
            "energy": "intermolecular" if interaction else "total", "config": config}


def model_metadata(module) -> dict:
    """The ``mrl_metadata`` JSON of a loaded model (TorchScript module) as a dict; {} when it has none."""
    return json.loads(module.mrl_metadata) if hasattr(module, "mrl_metadata") else {}


def metadata(checkpoint_path: str) -> dict:
    state = read_checkpoint(checkpoint_path)
    last = state["history"][-1] if state.get("history") else {}
    return {**head_metadata(load_model(checkpoint_path), state["config"]), "options": state.get("options"),
            "statistics": state.get("statistics"), "split": state.get("split"), "epoch": state.get("epoch"),
            "init": state.get("init"), "validation": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
            "checkpoint": os.path.abspath(checkpoint_path)}


def export(checkpoint_path: str, output: str, direct_forces: bool = False) -> torch.jit.ScriptModule:
    """Scripts the checkpoint's head and saves it to ``output`` (atomically); returns the module."""
    head = load_model(checkpoint_path)
    if direct_forces and not isinstance(head, ForceHead):
        raise ValueError(f"{checkpoint_path} holds an interaction head, which has no direct forces; "
                         f"export it without --direct-forces")
    text = json.dumps(metadata(checkpoint_path))
    wrapper = ExportedDirectForceHead(head, text) if direct_forces else ExportedHead(head, text)
    return save_module(wrapper, output)


def save_module(wrapper: torch.nn.Module, output: str) -> torch.jit.ScriptModule:
    """Scripts an exported wrapper (``ExportedHead``...) and saves it to ``output`` atomically."""
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
