"""The sliders of the course: each decomposes once, redraws a figure and shows its numbers as text.

Every slider returns a `Panel` (an ipywidgets VBox): `.controls` are the sliders, `.readout` an HTML line with the
numbers (readable by tests and screen readers), `.values` the same numbers as a dict, `.image` the figure (PNG).
"""
from __future__ import annotations

import html
import io

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from . import plots
from ._checks import as_matrix, check_int, check_real, check_seed
from .rank import resolve_tol
from .svd import SVDFactorizer

__all__ = ["Panel", "figure_png", "image_png", "circle_rank_slider", "noise_rank_slider", "photo_rank_slider", "matrix_rank_slider",
           "lora_calculator", "sweep_slider"]


class Panel(W.VBox):
    """Sliders, a text readout and a figure; `update()` runs whenever a slider moves.

    `draw(**slider_values)` returns (values, readout_html, png_bytes); `beside` is an optional widget shown to
    the left of the figure (e.g. the original photograph, drawn once).
    """

    def __init__(self, controls: dict, draw, beside=None):
        self.controls = controls
        self.readout = W.HTML()
        # The figure travels as PNG bytes in an Image widget: a plain widget value, so every front end shows it
        # and a kernel-side test (or nbval) sees no stray display messages.
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.values: dict = {}
        self._draw = draw
        figure = self.image if beside is None else W.HBox([beside, self.image])
        row = W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap"))
        super().__init__([row, self.readout, figure])
        for c in controls.values():
            c.observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        """Recompute the numbers for the current slider values, then redraw the figure."""
        self.values, self.readout.value, self.image.value = self._draw(
            **{k: c.value for k, c in self.controls.items()})


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    if not isinstance(fig, plt.Figure):
        raise TypeError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def image_png(img) -> bytes:
    """A grayscale image (m, n) with values in [0, 1] as PNG bytes, pixel for pixel."""
    from PIL import Image  # matplotlib depends on Pillow

    img = as_matrix(img, "img")
    buf = io.BytesIO()
    pixels = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(buf, format="PNG", compress_level=1)  # fast beats small here
    return buf.getvalue()


def _int_slider(value, lo, hi, description):
    return W.IntSlider(value=value, min=lo, max=hi, step=1, description=description, continuous_update=False,
                       style={"description_width": "initial"}, layout=W.Layout(width="420px"))


def _log_slider(value, lo_exp, hi_exp, description):
    return W.FloatLogSlider(value=value, base=10, min=lo_exp, max=hi_exp, step=0.25, description=description,
                            continuous_update=False, readout_format=".0e",
                            style={"description_width": "initial"}, layout=W.Layout(width="420px"))


def circle_rank_slider(A=((2.0, 1.0), (1.0, 0.5)), D=((0.0, 0.0), (0.0, 1.0)), t: float = 1.0) -> Panel:
    """Slider t over the 2×2 matrix A + t·D: the unit circle's image, σ₁, σ₂, det and rank as t moves."""
    A, D = as_matrix(A, "A"), as_matrix(D, "D")
    if A.shape != (2, 2) or D.shape != (2, 2):
        raise ValueError(f"A and D must be 2×2; got shapes {A.shape} and {D.shape}")
    t = check_real(t, "t", lo=0.0, hi=2.0)

    def draw(t):
        At = A + t * D
        s = np.linalg.svd(At, compute_uv=False)
        rank = int((s > resolve_tol(s, At)).sum())
        values = {"t": t, "matrix": At, "singular_values": s, "det": float(np.linalg.det(At)), "rank": rank,
                  "area": float(np.pi * s[0] * s[1])}
        rows = " ; ".join(", ".join(f"{x:.2f}" for x in row) for row in At)
        text = (f"t = {t:.2f}: A = [{rows}] · σ₁ = {s[0]:.3f}, σ₂ = {s[1]:.3f} · det = {values['det']:.3f} · "
                f"area of the image π·σ₁·σ₂ = {values['area']:.3f} · <b>rank {rank}</b>")
        return values, text, figure_png(plots.unit_circle_map(At))

    slider = W.FloatSlider(value=t, min=0.0, max=2.0, step=0.05, description="t", continuous_update=False,
                           readout_format=".2f", style={"description_width": "initial"},
                           layout=W.Layout(width="420px"))
    return Panel({"t": slider}, draw)


def noise_rank_slider(A=None, noise: float = 1e-9, tol: float = 1e-10, seed: int = 0) -> Panel:
    """Sliders for noise level and tolerance over A + noise·E (E fixed Gaussian): singular values and rank."""
    A = as_matrix(np.outer([1, 2, 3], [1, 2, 3]) if A is None else A)
    E = np.random.default_rng(check_seed(seed)).standard_normal(A.shape)  # one fixed noise pattern, scaled by the slider
    check_real(noise, "noise", lo=0.0)
    check_real(tol, "tol", lo=0.0)

    def draw(noise, tol):
        B = A + noise * E
        s = np.linalg.svd(B, compute_uv=False)
        d = resolve_tol(s, B)          # numpy's rule, from the same singular values
        values = {"noise": noise, "tol": tol, "singular_values": s,
                  "rank": int((s > tol).sum()), "default_tol": d, "default_rank": int((s > d).sum())}
        html = (f"noise {noise:.1e} → σ = [{', '.join(f'{x:.2e}' for x in s)}] · "
                f"<b>numerical rank at tolerance {tol:.1e}: {values['rank']}</b> · "
                f"with numpy's default tolerance ({d:.1e}): {values['default_rank']}")
        fig = plots.singular_values(s, tol=tol, default_tol=d, title=f"A + noise · E, noise = {noise:.1e}")
        return values, html, figure_png(fig)

    return Panel({"noise": _log_slider(noise, -16, 0, "noise level"),
                  "tol": _log_slider(tol, -16, 1, "tolerance")}, draw)


def _rank_readout(f: SVDFactorizer, r: int):
    """The numbers a rank slider shows: relative error and storage of the best rank-r approximation."""
    err, st = f.error(r), f.stored(r)
    values = {"r": r, "error": err, "stored": st.numbers, "share": st.share}
    html = (f"<b>rank {r}</b>: relative error <b>{err:.2%}</b> · stores {st.numbers:,} numbers = "
            f"<b>{st.share:.1%}</b> of {f.shape[0] * f.shape[1]:,}")
    return values, html


def photo_rank_slider(image, r: int = 20) -> Panel:
    """Rank slider over a grayscale image (m, n) in [0, 1]: the original beside its rank-r reconstruction."""
    f = SVDFactorizer(image)  # decomposed once; every slider move is one matrix product
    lo, hi = float(f.A.min()), float(f.A.max())
    if lo < 0 or hi > 1:
        hint = " (a 0..255 image: divide it by 255)" if hi > 1 else ""
        raise ValueError(f"image must hold gray levels in [0, 1]; got values from {lo:g} to {hi:g}{hint}")
    r = check_int(r, "r", 1, f.max_rank)

    def draw(r):
        values, html = _rank_readout(f, r)
        return values, f"original (left) and rank-{r} reconstruction (right) · " + html, image_png(f.approx(r))

    original = W.Image(value=image_png(f.A), format="png")
    return Panel({"r": _int_slider(r, 1, f.max_rank, "rank r")}, draw, beside=original)


def matrix_rank_slider(A, r: int = 5, true_rank: int | None = None) -> Panel:
    """Rank slider over a matrix (m, n): error curve and singular values with r marked, error and storage."""
    f = SVDFactorizer(A)
    r = check_int(r, "r", 1, f.max_rank)
    if true_rank is not None:
        true_rank = check_int(true_rank, "true_rank", 0, f.max_rank)
    errors = f.errors()

    def draw(r):
        values, html = _rank_readout(f, r)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
        plots.error_curve(errors, r=r, true_rank=true_rank, ax=a1, title="error of the best rank-r approximation")
        plots.singular_values(f.s, r=r, ax=a2)
        return values, html, figure_png(fig)

    return Panel({"r": _int_slider(r, 1, f.max_rank, "rank r")}, draw)


def lora_calculator(arch: str = "llama-2-7b", r: int = 8, targets=None) -> Panel:
    """LoRA's trainable parameters for a published architecture: sliders over r and checkboxes over matrices.

    targets default to the LoRA paper's W_q and W_v where the architecture has them apart, else (GPT-2) the fused
    attention matrix c_attn that holds them.
    """
    from .lora import ARCHITECTURES, lora_param_count

    if targets is None and arch in ARCHITECTURES:
        linear = ARCHITECTURES[arch]["linear"]
        targets = ["q_proj", "v_proj"] if any(k.endswith("q_proj") for k in linear) else ["c_attn"]
    lora_param_count(arch, r, targets)  # checks arch, r and targets
    r = check_int(r, "r", 1, 256)
    family = [a for a in ARCHITECTURES if a.split("-")[0] == arch.split("-")[0]]
    names = list(ARCHITECTURES[arch]["linear"])
    chosen = {k for k in names for t in targets if k == t or k.endswith("." + t)}
    controls = {"arch": W.Dropdown(options=family, value=arch, description="model"),
                "r": _int_slider(r, 1, 256, "rank r")}
    controls.update({k: W.Checkbox(value=k in chosen, description=k, indent=False,
                                   layout=W.Layout(width="150px")) for k in names})

    def draw(arch, r, **checks):
        picked = [k for k, on in checks.items() if on]
        if not picked:
            values = {"arch": arch, "r": r, "targets": [], "trainable": 0, "total": None, "share": 0.0}
            fig, ax = plt.subplots(figsize=(7, 2.6), layout="constrained")
            ax.text(0.5, 0.5, "tick at least one matrix", ha="center", va="center")
            ax.axis("off")
            return values, "no matrix ticked: LoRA trains nothing", figure_png(fig)
        c = lora_param_count(arch, r, picked)
        values = {"arch": arch, "r": r, "targets": picked, "trainable": c.trainable, "total": c.total,
                  "share": c.share}
        html = (f"<b>{arch}</b>, r = {r}, on {', '.join(picked)}: <b>{c.trainable:,}</b> trainable parameters "
                f"of {c.total:,} = <b>{c.share:.3%}</b>")
        fig, ax = plt.subplots(figsize=(7, 2.6), layout="constrained")
        ax.barh(list(c.per_target)[::-1], [v / 1e6 for v in c.per_target.values()][::-1], color=plots.BLUE)
        ax.set(xlabel="trainable parameters (millions)",
               title=f"{c.trainable / 1e6:.2f}M trainable = {c.share:.3%} of {c.total / 1e9:.2f}B")
        return values, html, figure_png(fig)

    return Panel(controls, draw)


def sweep_slider(result: dict, regime: str = "long", r=8) -> Panel:
    """Walk through a stored rank sweep (lora_edu.sweep.load_results()): loss, parameter count and sample per rank."""
    if not isinstance(result, dict) or "regimes" not in result:
        raise TypeError(f"result must be a rank sweep dict (lora_edu.sweep.load_results()); got {type(result).__name__}")
    regimes = result["regimes"]
    if regime not in regimes:
        raise ValueError(f"regime must be one of {list(regimes)}; got {regime!r}")
    ranks = [row["r"] for row in regimes[regime]["rows"]]
    if r not in ranks:
        raise ValueError(f"r must be one of the swept ranks {ranks}; got {r!r}")
    controls = {"regime": W.ToggleButtons(options=list(regimes), value=regime, description="regime"),
                "r": W.SelectionSlider(options=ranks, value=r, description="rank r", continuous_update=False,
                                       layout=W.Layout(width="420px"))}

    def draw(regime, r):
        reg = regimes[regime]
        rows = reg["rows"]
        row = next(x for x in rows if x["r"] == r)
        full = next(x for x in rows if x["r"] == "full")
        values = {"regime": regime, "r": r, "trainable": row["trainable"], "share": row["trainable"] / full["trainable"],
                  "val_loss": row["val_loss"], "minus_full": row["val_loss"] - full["val_loss"],
                  "sample": row.get("sample")}
        text = (f"<b>{regime}</b> ({reg['steps']} steps, {reg['epochs']:.1f} passes through the text), r = <b>{r}</b>: "
                f"<b>{row['trainable']:,}</b> trainable = {values['share']:.1%} of the model; validation loss "
                f"<b>{row['val_loss']:.3f}</b> nats/byte ({values['minus_full']:+.3f} against full fine-tuning)")
        if values["sample"] is not None:
            text += f"<pre style='font-size:11px;line-height:1.25'>{html.escape(values['sample'])}</pre>"
        fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
        plots.rank_tradeoff(rows, ax=ax, highlight=r, title=f"{regime} regime: {result['hardware']}")
        return values, text, figure_png(fig)

    return Panel(controls, draw)
