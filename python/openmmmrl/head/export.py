# SPDX-License-Identifier: MIT
"""Export a trained force head as a "graph/1" TorchScript model file for MRLForce.

    python -m openmmmrl.export runs/head/best.pt --output models/head.pt
    python -m openmmmrl.export runs/head/best.pt --output head_direct.pt --direct-forces
    python -m openmmmrl.export runs/delta/best.pt --output delta.pt     # an interaction head (--model interaction)
    python -m openmmmrl.export models/mrl-head-xtb.pt --format pt2 --output build/mrl-head-xtb.pt2

--format pt2 compiles an AOTInductor package (see openmmmrl.pt2) from a checkpoint or from an exported
TorchScript file: native code for this machine and this torch, forces inside the graph; a minute or two
per dtype.

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
from typing import Optional, Tuple, TypeVar

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
    return _rebuilt(found, state["config"], state["model"])


def _rebuilt(kind: str, config: dict, weights: dict) -> torch.nn.Module:
    """A head of ``kind`` from its saved settings and the ``head.``-prefixed weights (eval mode)."""
    model_class, config_class = KINDS[kind]
    head = model_class(config_class.from_dict(config))
    prefix = "head."
    head.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
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


def load_script(path: str) -> torch.jit.ScriptModule:
    """A TorchScript model file on the CPU, without torch's deprecation notice for ``torch.jit.load`` (our
    own code paths do not print it at users; MRLForce keeps running TorchScript models)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(path, map_location="cpu")


def is_model_file(path: str) -> bool:
    """True for a TorchScript model file (what :func:`export` writes), False for a training checkpoint."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_exported(model_path: str) -> Tuple[torch.nn.Module, dict]:
    """The Python head of an exported model file, rebuilt from the file alone (its metadata's settings and
    its weights), and that metadata.  The TorchScript file is the portable form of a shipped head: its
    .pt2 package is built from it on the machine that runs it (:func:`export_package`)."""
    module = load_script(model_path)
    meta = model_metadata(module)
    if "config" not in meta or "format" not in meta:
        raise ValueError(f"{model_path} is not a head exported by python -m openmmmrl.export (no settings in its "
                         f"mrl_metadata); export it from its training checkpoint")
    kind = "interaction" if "interaction" in meta["format"] else "force"
    return _rebuilt(kind, meta["config"], module.state_dict()), meta


def example_graph(cutoff_nm: float) -> Tuple[torch.Tensor, ...]:
    """A "graph/1" call on three water molecules (9 atoms, every pair within the cutoff an edge), to trace with."""
    oxygen = torch.tensor([[0.0, 0.0, 0.0], [0.28, 0.0, 0.0], [0.14, 0.25, 0.0]])
    hydrogens = torch.tensor([[0.0757, 0.0586, 0.0], [-0.0757, 0.0586, 0.0]])
    positions = torch.cat([torch.cat([o.unsqueeze(0), o + hydrogens]) for o in oxygen])
    atomic_numbers = torch.tensor([8, 1, 1] * 3)
    molecule_index = torch.arange(3).repeat_interleave(3)
    i, j = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    keep = (i != j) & (torch.cdist(positions, positions) < cutoff_nm)
    edge_index = torch.stack([i[keep], j[keep]])
    return positions, atomic_numbers, molecule_index, edge_index, torch.zeros(edge_index.shape[1], 3)


def export_package(source: str, output: str, dtypes=("float32", "float64"), direct_forces: bool = False,
                   threads: Optional[int] = None) -> str:
    """An AOTInductor package (.pt2) of a head, for this machine and this torch: from a training checkpoint or
    from an exported TorchScript file (e.g. models/mrl-head-xtb.pt); the metadata is the same as
    :func:`export` writes.  Returns ``output``."""
    from ..pt2 import export_pt2
    if is_model_file(source):
        head, meta = load_exported(source)
    else:
        head, meta = load_model(source), metadata(source)
    wrapper = ExportedDirectForceHead(head) if direct_forces else ExportedHead(head)
    head.trunk.check_elements_on_host = False  # a compiled graph cannot raise on values: NaN instead
    return export_pt2(wrapper, example_graph(head.cutoff_nm), output, dtypes=dtypes, metadata=meta, threads=threads)


def package_cache_directory() -> str:
    """Where :func:`cached_package` keeps built packages: $MRL_PT2_CACHE, else ~/.cache/openmm-mrl/pt2."""
    return os.environ.get("MRL_PT2_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "openmm-mrl", "pt2")


def package_path(source: str, dtypes=("float32", "float64"), threads: Optional[int] = None) -> str:
    """Where :func:`cached_package` keeps the package of ``source`` (a model file or checkpoint)."""
    threads = int(threads or torch.get_num_threads())
    import hashlib
    import platform
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        digest.update(f.read())
    digest.update(f"|{torch.__version__}|{platform.machine()}|{platform.processor()}|{','.join(dtypes)}".encode())
    stem = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(package_cache_directory(), f"{stem}-{digest.hexdigest()[:16]}-{threads}threads.pt2")


def cached_package(source: str, dtypes=("float32", "float64"), threads: Optional[int] = None) -> str:
    """The path of the .pt2 package of a model file or checkpoint, built on first use (a minute or two per
    dtype) and then kept under :func:`package_cache_directory`, named by the hash of the source's bytes, the
    torch version, the machine and the dtypes: a changed model, torch or machine gets a new package, never a
    stale one; ``threads`` (default ``torch.get_num_threads()``) is compiled in, one package per count.  The
    setup step builds the shipped head's package this way."""
    path = package_path(source, dtypes, threads)
    if not os.path.exists(path):
        export_package(source, path, tuple(dtypes), threads=threads)
    return path


def save_module(wrapper: torch.nn.Module, output: str) -> torch.jit.ScriptModule:
    """Scripts an exported wrapper (``ExportedHead``...) and saves it to ``output`` atomically."""
    import warnings
    with warnings.catch_warnings():  # torch's deprecation notices of torch.jit.script and save
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.script(wrapper.eval())
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    tmp = output + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(module, tmp)
    os.replace(tmp, output)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m openmmmrl.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="best.pt or checkpoint.pt of python -m openmmmrl.train (or, with "
                                           "--format pt2, an exported model file such as models/mrl-head-xtb.pt)")
    parser.add_argument("--output", required=True, help="the model file to write")
    parser.add_argument("--format", choices=["torchscript", "pt2"], default="torchscript",
                        help="torchscript (default: portable, runs everywhere) or pt2 (an AOTInductor package: "
                             "native code for this machine and this torch, forces compiled into the graph)")
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "float64"], default=["float32", "float64"],
                        help="--format pt2: the dtypes to compile a model for (default both)")
    parser.add_argument("--threads", type=int, default=None,
                        help="--format pt2: CPU threads compiled into the kernels (default: torch's count now)")
    parser.add_argument("--direct-forces", action="store_true",
                        help="return the direct force head's forces too (outputs_forces; not conservative)")
    args = parser.parse_args(argv)
    try:
        if args.format == "pt2":
            export_package(args.checkpoint, args.output, tuple(args.dtypes), args.direct_forces, args.threads)
        else:
            export(args.checkpoint, args.output, args.direct_forces)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    size = os.path.getsize(args.output)
    kind = f"AOTInductor package, {' and '.join(args.dtypes)}" if args.format == "pt2" else "TorchScript"
    print(f"wrote {args.output} ({size / 1e6:.2f} MB, graph/1, {kind}, "
          f"{'direct forces' if args.direct_forces else 'conservative forces'})", file=sys.stderr)


if __name__ == "__main__":
    main()
