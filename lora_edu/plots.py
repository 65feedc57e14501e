"""The figures of the course. Each draws into given axes (or a new figure) and returns the figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._checks import as_matrix, as_vector, check_int, check_real
from .rank import resolve_tol

__all__ = ["unit_circle_map", "singular_values", "reconstruction", "error_curve", "loss_curves", "rank_tradeoff"]

BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def unit_circle_map(A, axes=None, title=None):
    """The unit circle and its image {A x : |x| = 1} for a 2×2 matrix A, with A vᵢ = σᵢ uᵢ drawn as arrows.

    The image is an ellipse with semi-axes σ₁u₁ and σ₂u₂ — a segment when rank A = 1, a point when A = 0. The
    left panel marks the null space (the inputs A sends to zero) when there is one; the right one the column space.
    """
    A = np.asarray(A, dtype=float)
    if A.shape != (2, 2) or not np.isfinite(A).all():
        raise ValueError(f"A must be a finite 2×2 matrix; got shape {A.shape}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 4), layout="constrained")
    fig = axes[0].figure
    U, s, Vt = np.linalg.svd(A)
    flip = np.where(Vt[:, 0] < 0, -1.0, 1.0)                    # the signs are free: point v₁, v₂ to the right
    U, Vt = U * flip, Vt * flip[:, None]
    rank = int((s > resolve_tol(s, A)).sum())                    # numpy's rule, as matrix_rank
    t = np.linspace(0, 2 * np.pi, 241)
    circle = np.stack([np.cos(t), np.sin(t)])                   # (2, 241): inputs x as columns
    image = A @ circle                                           # (2, 241): outputs A x
    marks = np.linspace(0, 2 * np.pi, 13)[:-1]                   # 12 coloured inputs, to follow each one
    dots = np.stack([np.cos(marks), np.sin(marks)])
    colors = plt.cm.hsv(np.linspace(0, 1, 12, endpoint=False))
    lim = max(1.2, 1.15 * s[0])
    for ax, curve, pts, vecs, name in ((axes[0], circle, dots, Vt, "inputs x: the unit circle"),
                                       (axes[1], image, A @ dots, (U * s).T, "outputs A x")):
        ax.plot(*curve, color=GREY, lw=1.5)
        ax.scatter(*pts, c=colors, s=22, zorder=3)
        for i, (v, c) in enumerate(zip(vecs, (BLUE, ORANGE))):
            if np.linalg.norm(v) > 1e-12:
                ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=c, lw=2))
        ax.axhline(0, color=GREY, lw=0.5)
        ax.axvline(0, color=GREY, lw=0.5)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=name)
    axes[0].plot([], [], color=BLUE, lw=2, label="v₁")
    axes[0].plot([], [], color=ORANGE, lw=2, label="v₂")
    axes[1].plot([], [], color=BLUE, lw=2, label=f"A v₁ = σ₁u₁ (σ₁ = {s[0]:.2f})")
    axes[1].plot([], [], color=ORANGE, lw=2, label=f"A v₂ = σ₂u₂ (σ₂ = {s[1]:.2f})")
    if rank < 2:                                                 # a direction of inputs that A sends to zero
        n = Vt[-1] * lim
        axes[0].plot([-n[0], n[0]], [-n[1], n[1]], color="#d62728", ls="--", lw=1.2, label="null space")
    if rank == 1:
        c = U[:, 0] * lim
        axes[1].plot([-c[0], c[0]], [-c[1], c[1]], color="#2ca02c", lw=7, alpha=0.25, zorder=0,
                     label="column space (a line)")                  # a wide band under the segment
    for ax in axes:
        ax.legend(loc="lower left", fontsize=7)
    fig.suptitle(title or f"rank {rank}: the circle becomes " + ("an ellipse", "a segment", "a point")[2 - rank],
                 fontsize=10)
    return fig


def singular_values(s, tol=None, default_tol=None, r=None, ax=None, title="Singular values"):
    """Bars of the singular values s (k,) on a log scale, with tolerance lines; bars above tol are blue."""
    s = as_vector(s, "s")
    tol = None if tol is None else check_real(tol, "tol", lo=0.0)
    default_tol = None if default_tol is None else check_real(default_tol, "default_tol", lo=0.0)
    r = None if r is None else check_int(r, "r", 0, len(s))
    fig, ax = _axes(ax, (6, 3.2))
    i = np.arange(1, len(s) + 1)
    floor = max(s[s > 0].min() if (s > 0).any() else 1.0, 1e-300) * 1e-2
    shown = np.maximum(s, floor)  # log axes cannot draw zero
    above = s > (tol if tol is not None else -1)
    ax.bar(i, shown, color=np.where(above, BLUE, GREY), width=0.8 if len(s) <= 64 else 1.0)
    if tol is not None:
        ax.axhline(tol, color=ORANGE, lw=1.5, label=f"tolerance {tol:.1e}")
    if default_tol is not None:
        ax.axhline(default_tol, color=GREY, lw=1, ls="--", label=f"numpy's default {default_tol:.1e}")
    if r is not None:
        ax.axvline(r + 0.5, color="k", lw=1, ls=":", label=f"r = {r}")
    if len(s) <= 20:
        ax.set_xticks(i)
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel("σᵢ")
    ax.set_title(title)
    if tol is not None or default_tol is not None or r is not None:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def reconstruction(original, approx, r, error, share, axes=None):
    """The original image beside its rank-r reconstruction, with the relative error and storage share."""
    original, approx = as_matrix(original, "original"), as_matrix(approx, "approx")
    if original.shape != approx.shape:
        raise ValueError(f"original and approx must have the same shape; got {original.shape} and {approx.shape}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 4.3), layout="constrained")
    fig = axes[0].figure
    for ax, img, title in ((axes[0], original, f"original ({original.shape[0]}×{original.shape[1]})"),
                           (axes[1], approx, f"rank {r}: error {error:.1%}, stores {share:.1%}")):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    return fig


def error_curve(errors, r=None, true_rank=None, ax=None, title="Relative error of the best rank-r approximation"):
    """Relative error against rank r = 1 … len(errors), with the chosen r and the true rank marked."""
    errors = as_vector(errors, "errors")
    r = None if r is None else check_int(r, "r", 1, len(errors))
    fig, ax = _axes(ax, (6, 3.2))
    ranks = np.arange(1, len(errors) + 1)
    ax.plot(ranks, errors, color=BLUE, lw=1.5)
    if true_rank is not None:
        ax.axvline(true_rank, color=GREY, ls="--", lw=1, label=f"true rank {true_rank}")
    if r is not None:
        ax.plot([r], [errors[r - 1]], "o", color=ORANGE, label=f"r = {r}: {errors[r - 1]:.1%}")
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("‖A − A_r‖ / ‖A‖")
    ax.set_title(title)
    if r is not None or true_rank is not None:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def loss_curves(histories: dict, ax=None, title="Loss while training (nats per byte)", smooth: int = 20):
    """Training loss (a moving average over `smooth` steps) and validation loss of each {label: History}."""
    if not isinstance(histories, dict) or not histories:
        raise ValueError(f"histories must be a non-empty dict {{label: History}}; got {histories!r:.60}")
    fig, ax = _axes(ax, (7, 3.6))
    colors = [BLUE, ORANGE, "#2ca02c", "#d62728", "#9467bd", GREY]
    for (label, h), color in zip(histories.items(), colors * len(histories)):
        loss = np.asarray(h.step_loss, dtype=float)
        if loss.size:
            k = max(1, min(smooth, loss.size))
            avg = np.convolve(loss, np.ones(k) / k, mode="valid")          # (steps - k + 1,)
            ax.plot(np.arange(k, loss.size + 1), avg, color=color, lw=1, alpha=0.6, label=f"{label}: train")
        steps, val = h.column("step"), h.column("val_loss")
        if h.start_val_loss is not None:                                   # where training started
            steps, val = [0, *steps], [h.start_val_loss, *val]
        ax.plot(steps, val, "o-", color=color, ms=4, label=f"{label}: validation")
    ax.set(xlabel="step", ylabel="loss (nats/byte)", title=title)
    ax.legend(fontsize=8)
    return fig


def rank_tradeoff(rows, ax=None, title="Validation loss against trainable parameters", base=None, highlight=None,
                  live=None, label="stored sweep"):
    """A rank sweep's validation loss against trainable parameters (log axis), each LoRA point marked with its r.

    rows (and `live`, an optional second sweep drawn on top) are [{"r": rank or "full", "trainable", "val_loss"}];
    full fine-tuning is a star and a dotted line, `base` (the loss before fine-tuning) a dashed one, `highlight`
    a ringed rank.
    """
    for name, sweep in (("rows", rows), ("live", live or [{"r": 1, "trainable": 1, "val_loss": 0.0}])):
        if not isinstance(sweep, (list, tuple)) or not sweep or not all(
                isinstance(row, dict) and {"r", "trainable", "val_loss"} <= set(row) for row in sweep):
            raise ValueError(f"{name} must be a non-empty list of {{'r', 'trainable', 'val_loss'}} rows (a rank "
                             f"sweep's 'rows'); got {sweep!r:.80}")
    fig, ax = _axes(ax, (6.5, 3.6))
    for sweep, color, marker, name in ((rows, BLUE, "o-", label), (live or [], ORANGE, "s--", "live run")):
        lora = [row for row in sweep if row["r"] != "full"]
        full = [row for row in sweep if row["r"] == "full"]
        if lora:
            ax.plot([row["trainable"] for row in lora], [row["val_loss"] for row in lora], marker, color=color,
                    ms=5, mfc=color if sweep is rows else "none", label=f"LoRA, {name}")
        for row in full:
            ax.axhline(row["val_loss"], color=color, ls=":" if sweep is rows else "-.", lw=1.2)
            ax.plot([row["trainable"]], [row["val_loss"]], "*", color=color, ms=11, mfc=color if sweep is rows
                    else "none", label=f"full fine-tuning, {name} ({row['trainable']:,} trainable)")
        if sweep is rows:
            for row in lora:
                ax.annotate(f"r={row['r']}", (row["trainable"], row["val_loss"]), textcoords="offset points",
                            xytext=(0, 7), ha="center", fontsize=7)
    if base is not None:
        ax.axhline(base, color=GREY, ls="--", lw=1, label=f"before fine-tuning ({base:.3f})")
    if highlight is not None:
        row = next(row for row in rows if row["r"] == highlight)
        ax.plot([row["trainable"]], [row["val_loss"]], "o", ms=13, mfc="none", mec="k", mew=1.5, label=f"r = {highlight}")
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters (log scale)", ylabel="validation loss (nats/byte)", title=title)
    ax.legend(fontsize=7)
    return fig
