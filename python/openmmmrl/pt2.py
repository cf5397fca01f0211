# SPDX-License-Identifier: MIT
"""AOTInductor packages (``.pt2``) for MRLForce: energy, forces and dE/d(global parameter) in one compiled graph.

    >>> from openmmmrl import export_pt2
    >>> export_pt2(model, (positions,), "model.pt2")                       # a "positions" model
    >>> export_pt2(head, (pos, z, mol, edge_index, edge_shift), "head.pt2")  # a "graph/1" model

TorchScript is deprecated upstream; the C++ path PyTorch recommends is ``torch.export`` and AOTInductor.
AOTInductor has no autograd at run time, so the package's graph computes the forces itself: the model's
energy and its gradients are traced together with ``make_fx`` (symbolic shapes, core ATen decompositions),
that graph is exported with the atom and edge counts dynamic, and compiled once per dtype.  One package
holds a model per dtype, named ``"float32"`` and ``"float64"``; MRLForce runs the one its precision asks for.

What a package's graph takes and returns (docs/model-interface.md, "AOTInductor packages"):
  inputs   the model's forward arguments (the "positions" or "graph/1" interface, then the global parameters)
  outputs  energy [] (kJ/mol), forces [N, 3] (kJ/mol/nm), then dE/d(global parameter) [] for each global
The model settings travel as the package's metadata (strings): ``mrl_interface``, ``cutoff_nm``,
``mrl_periodic``, ``mrl_num_global_parameters``, ``mrl_dtype``, ``mrl_threads``, ``mrl_torch_version``, ``mrl_format``
(``"openmm-mrl pt2/1"``) and ``mrl_metadata`` (a JSON text of the caller's own).

A package is native code for one machine kind and one torch version: build it where it runs (the setup
step builds the shipped head's, see ``python -m openmmmrl.export --format pt2``), never ship one.
"""
import copy
import json
import os
import tempfile
from typing import Dict, Optional, Sequence

import torch

__all__ = ["export_pt2", "PT2_FORMAT"]

#: The value of the ``mrl_format`` metadata key of the packages this module writes.
PT2_FORMAT = "openmm-mrl pt2/1"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _interface(module) -> str:
    return str(getattr(module, "mrl_interface", "positions"))


def _num_base_inputs(interface: str, periodic: bool) -> int:
    return 5 if interface == "graph/1" else (2 if periodic else 1)


def _energy_and_gradients(module, names: Sequence[str], outputs_forces: bool, num_base: int):
    """f(state, *inputs) -> (energy, forces, dE/dg...): the function that make_fx traces."""
    from torch.func import functional_call

    def f(state, *inputs):
        with torch.enable_grad():
            positions = inputs[0].detach().requires_grad_(not outputs_forces)
            globals_ = [g.detach().requires_grad_(True) for g in inputs[num_base:]]
            out = functional_call(module, dict(zip(names, state)), (positions, *inputs[1:num_base], *globals_))
            energy = out[0] if outputs_forces else out
            wrt = ([] if outputs_forces else [positions]) + globals_
            grads = torch.autograd.grad(energy.sum(), wrt, allow_unused=True) if wrt else ()
        grads = [torch.zeros_like(v) if g is None else g for g, v in zip(grads, wrt)]
        forces = out[1] if outputs_forces else -grads[0]
        derivatives = grads if outputs_forces else grads[1:]
        return (energy.reshape(()).detach(), forces.detach(), *[d.reshape(()).detach() for d in derivatives])

    return f


class _Traced(torch.nn.Module):
    """The traced graph with the model's weights as buffers: what torch.export sees."""

    def __init__(self, graph, state: Sequence[torch.Tensor]):
        super().__init__()
        self.graph_module = graph
        self.count = len(state)
        for k, tensor in enumerate(state):
            self.register_buffer(f"state_{k}", tensor)

    def forward(self, *inputs):
        return self.graph_module([getattr(self, f"state_{k}") for k in range(self.count)], *inputs)


def _dynamic_shapes(interface: str, num_inputs: int):
    atoms = torch.export.Dim("atoms", min=1, max=1 << 24)
    if interface == "graph/1":
        edges = torch.export.Dim("edges", min=0, max=1 << 30)
        base = [{0: atoms}, {0: atoms}, {0: atoms}, {1: edges}, {0: edges}]
    else:
        base = [{0: atoms}] + [None] * (num_inputs - 1)
    return (base + [None] * num_inputs)[:num_inputs]


def _check_dynamic(traced, state, inputs: Sequence[torch.Tensor], interface: str) -> None:
    """Runs the traced graph with one atom more (placed 2 nm beyond the others, with no edges); raises a
    ValueError if the graph does not follow the atom count: sizes baked in at trace time
    (``torch.triu_indices(n, n)``, a Python ``int`` of a size, ``.item()``) would run any other count wrong."""
    positions = inputs[0]
    far = positions[-1:] + 2.0
    grown = [torch.cat([positions, far])]
    if interface == "graph/1":
        grown += [torch.cat([inputs[1], inputs[1][-1:]]), torch.cat([inputs[2], inputs[2][-1:]]), *inputs[3:]]
    else:
        grown += list(inputs[1:])
    try:
        forces = traced(state, *grown)[1]
        ok = tuple(forces.shape) == (positions.shape[0] + 1, 3)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"the model's traced graph is fixed to {positions.shape[0]} atoms: a size became a constant "
                         f"while tracing (torch.triu_indices(n, n), a Python int of a shape, .item()); write those "
                         f"steps with tensor operations on the inputs (e.g. all pairs by broadcasting, masked with "
                         f"torch.where) so that any atom count runs")


def _compile(module, inputs: Sequence[torch.Tensor], interface: str, outputs_forces: bool, num_base: int,
             metadata: Dict[str, str]):
    """The AOTInductor files of one dtype's model."""
    from torch._decomp import core_aten_decompositions
    from torch.fx.experimental.proxy_tensor import make_fx
    named = dict(module.named_parameters())
    named.update(dict(module.named_buffers()))
    names = list(named)
    state = [named[n].detach() for n in names]
    traced = make_fx(_energy_and_gradients(module, names, outputs_forces, num_base), tracing_mode="symbolic",
                     decomposition_table=core_aten_decompositions())(state, *inputs)
    _check_dynamic(traced, state, inputs, interface)
    wrapper = _Traced(traced, state)
    program = torch.export.export(wrapper, tuple(inputs), dynamic_shapes=(tuple(_dynamic_shapes(interface, len(inputs))),))
    return torch._inductor.aot_compile(program.module(), tuple(inputs),
                                       options={"aot_inductor.package": True, "aot_inductor.metadata": metadata})


def export_pt2(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], path: str,
               dtypes: Sequence[str] = ("float32", "float64"), periodic: bool = False,
               metadata: Optional[dict] = None, threads: Optional[int] = None) -> str:
    """Compile ``module`` (a model that follows docs/model-interface.md: ``mrl_interface``, ``cutoff_nm``,
    optional ``outputs_forces``) into an AOTInductor package at ``path`` (written atomically); returns ``path``.

    ``example_inputs``: one call's forward arguments (positions nm, and for "graph/1" atomic numbers,
    molecule indices, edge_index, edge_shift nm; then one scalar tensor per global parameter), with at
    least 2 atoms and 2 edges (sizes 0 and 1 would be specialized); the package accepts any atom and edge
    count.  ``periodic``: a "positions" model whose second argument is the box [3, 3] (nm).  ``dtypes``: a
    model per dtype, "float32" and/or "float64".  ``metadata``: a JSON-able dict stored as ``mrl_metadata``.
    ``threads``: the CPU threads the compiled kernels use (default: ``torch.get_num_threads()`` now).  It is
    fixed at compile time (``#pragma omp parallel num_threads(n)``): MRLForce's Threads property does not
    change a package's kernels; compile one package per thread count you run with.
    Compiling takes about a minute per dtype for a small model (a C++ compiler runs)."""
    interface = _interface(module)
    if interface not in ("positions", "graph/1"):
        raise ValueError(f"mrl_interface {interface!r} is not \"positions\" or \"graph/1\"")
    num_base = _num_base_inputs(interface, periodic)
    if len(example_inputs) < num_base:
        raise ValueError(f"a {interface!r} model{' with a box' if periodic else ''} takes {num_base} inputs before "
                         f"its global parameters; example_inputs has {len(example_inputs)}")
    unknown = [d for d in dtypes if d not in _DTYPES]
    if unknown or not dtypes:
        raise ValueError(f"dtypes {list(dtypes)}: give float32 and/or float64")
    outputs_forces = bool(getattr(module, "outputs_forces", False))
    threads = int(threads or torch.get_num_threads())
    if threads < 1:
        raise ValueError(f"threads {threads}: give a positive number of CPU threads")
    common = {"mrl_format": PT2_FORMAT, "mrl_threads": str(threads), "mrl_interface": interface, "mrl_periodic": str(bool(periodic)).lower(),
              "mrl_num_global_parameters": str(len(example_inputs) - num_base),
              "mrl_torch_version": torch.__version__.split("+")[0], "mrl_metadata": json.dumps(metadata or {})}
    if interface == "graph/1":
        common["cutoff_nm"] = repr(float(module.cutoff_nm))
    files = {}
    for name in dtypes:
        dtype = _DTYPES[name]
        model = copy.deepcopy(module).to(dtype).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        inputs = [x.to(dtype) if x.is_floating_point() else x for x in example_inputs]
        with torch._inductor.config.patch({"cpp.threads": threads}):
            files[name] = _compile(model, inputs, interface, outputs_forces, num_base, {**common, "mrl_dtype": name})
    from torch._inductor.package import package_aoti
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:  # the archive's folder is named for the file
        tmp = os.path.join(scratch, os.path.basename(path))
        package_aoti(tmp, files)
        os.replace(tmp, path)
    return path
