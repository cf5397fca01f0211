# SPDX-License-Identifier: MIT
"""PNG plots of training and evaluation: loss curves, force parity, MD energies, learning curves.  Every function takes
plain numbers (arrays, a training history as history.json stores it) and a path; none runs a model."""
from typing import Dict, List, Optional, Sequence

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def loss_curves(history: List[dict], path: str):
    """Training and validation loss per objective against epoch (log scale)."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    names = [k[len("train_"):] for k in history[0] if k.startswith("train_") and any(h[k] > 0 for h in history)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        line, = axes[0].semilogy(epochs, [h["train_" + name] for h in history], label=name)
        if "val_loss_" + name in history[0]:
            axes[0].semilogy(epochs, [h["val_loss_" + name] for h in history], "--", color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="loss (normalized; dashed: validation)", title="objectives")
    axes[0].legend(fontsize=8)
    if "val_force_mae" in history[0]:
        axes[1].plot(epochs, [h["val_force_mae"] for h in history], label="total forces")
        axes[1].plot(epochs, [h["val_interaction_force_mae"] for h in history], label="interaction forces")
        axes[1].plot(epochs, [h["val_direct_force_mae"] for h in history], label="direct force head")
        axes[1].set(xlabel="epoch", ylabel="validation force MAE (kJ/mol/nm)", title="validation")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parity(panels: Dict[str, Sequence[np.ndarray]], path: str, unit: str = "kJ/mol/nm"):
    """One scatter panel per entry: name -> (reference, predicted) arrays of force components."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.3), squeeze=False)
    for ax, (name, (reference, predicted)) in zip(axes[0], panels.items()):
        reference, predicted = np.ravel(reference), np.ravel(predicted)
        ok = np.isfinite(reference)
        reference, predicted = reference[ok], predicted[ok]
        limit = float(np.percentile(np.abs(reference), 99.9)) * 1.1 if len(reference) else 1.0
        ax.scatter(reference, predicted, s=1, alpha=0.3)
        ax.plot([-limit, limit], [-limit, limit], "k--", lw=0.8)
        mae = float(np.mean(np.abs(predicted - reference))) if len(reference) else float("nan")
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xlabel=f"reference ({unit})",
               ylabel=f"predicted ({unit})", title=f"{name}: MAE {mae:.1f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def energy_trace(times_ps: Sequence[float], series: Dict[str, Sequence[float]], path: str, title: str = ""):
    """Energies (kJ/mol) against time (ps)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        ax.plot(times_ps, values, label=name)
    ax.set(xlabel="time (ps)", ylabel="energy (kJ/mol)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curve(frames: Sequence[int], panels: Dict[str, Dict[str, Sequence[float]]], path: str,
                   baselines: Optional[Dict[str, float]] = None):
    """One panel per entry: title -> {series name: error at each number of training frames}, against the
    number of frames (log scales); ``baselines`` (title -> error) draws a dashed line, e.g. the error of
    the uncorrected force field."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items()):
        for name, values in series.items():
            ax.plot(frames, values, "o-", label=name)
        if baselines and title in baselines:
            ax.axhline(baselines[title], color="k", ls="--", lw=0.8, label="baseline alone")
        ax.set(xscale="log", yscale="log", xlabel="training frames", ylabel=f"held-out MAE, {title}", title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
