"""The sliders, driven from Python: moving one recomputes exactly the numbers the factorizer gives."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lora_edu import data, plots, widgets  # noqa: E402
from lora_edu.rank import default_tol, matrix_rank, random_low_rank  # noqa: E402
from lora_edu.svd import SVDFactorizer  # noqa: E402


def test_photo_is_a_512_square_grayscale_image():
    p = data.photo()
    assert p.shape == (512, 512) and p.dtype == np.float64
    assert 0 <= p.min() and p.max() <= 1 and p.std() > 0.1


def test_photo_slider_shows_the_factorizers_numbers():
    img = data.photo()[::4, ::4]  # (128, 128): small and fast
    f = SVDFactorizer(img)
    panel = widgets.photo_rank_slider(img, r=10)
    slider = panel.controls["r"]
    assert slider.continuous_update is False and slider.max == 128
    images = {bytes(panel.image.value)}
    for r in (1, 10, 37, 128):
        slider.value = r
        images.add(bytes(panel.image.value))
        assert panel.values == {"r": r, "error": f.error(r), "stored": f.stored(r).numbers,
                                "share": f.stored(r).share}
        assert f"rank {r}</b>: relative error <b>{f.error(r):.2%}" in panel.readout.value
        assert f"<b>{f.stored(r).share:.1%}</b>" in panel.readout.value
    assert len(images) == 4 and all(im.startswith(b"\x89PNG") for im in images)  # one figure per rank seen


def test_matrix_slider_error_curve_bends_at_the_true_rank():
    A = random_low_rank(60, 40, 6, seed=0) + 0.01 * np.random.default_rng(1).standard_normal((60, 40))
    panel = widgets.matrix_rank_slider(A, r=3, true_rank=6)
    errs = {}
    for r in (5, 6, 7):
        panel.controls["r"].value = r
        errs[r] = panel.values["error"]
    assert errs[6] < errs[5] / 10          # the last true direction removes most of the error ...
    assert errs[7] > errs[6] * 0.9         # ... after it, only noise is left to remove


def test_noise_slider_counts_the_rank_at_the_chosen_tolerance():
    panel = widgets.noise_rank_slider(noise=1e-8, tol=1e-10)
    assert panel.values["rank"] == 3       # noise 1e-8 lifts both zero singular values above 1e-10
    panel.controls["tol"].value = 1e-6
    assert panel.values["rank"] == 1
    panel.controls["noise"].value = 1e-16
    v = panel.values
    B = np.outer([1, 2, 3], [1, 2, 3]) + 1e-16 * np.random.default_rng(0).standard_normal((3, 3))
    assert v["default_rank"] == matrix_rank(B) == 1
    assert v["default_tol"] == pytest.approx(default_tol(B))
    assert f"tolerance {v['tol']:.1e}: {v['rank']}" in panel.readout.value


def test_circle_slider_flattens_the_ellipse_as_the_rank_drops():
    panel = widgets.circle_rank_slider(t=1.0)
    slider = panel.controls["t"]
    assert slider.continuous_update is False and (slider.min, slider.max) == (0.0, 2.0)
    images = set()
    for t in (1.5, 1.0, 0.25, 0.0):
        slider.value = t
        v = panel.values
        A = np.array([[2.0, 1.0], [1.0, 0.5 + t]])
        s = np.linalg.svd(A, compute_uv=False)
        np.testing.assert_allclose(v["singular_values"], s)
        assert v["det"] == pytest.approx(2 * t, abs=1e-12)
        assert v["area"] == pytest.approx(np.pi * abs(np.linalg.det(A)), abs=1e-12)   # the image's area is π|det|
        assert v["rank"] == matrix_rank(A) == (2 if t > 0 else 1)
        assert f"<b>rank {v['rank']}</b>" in panel.readout.value
        images.add(bytes(panel.image.value))
    assert len(images) == 4


def test_the_circles_image_is_an_ellipse_with_the_singular_values_as_semi_axes():
    import matplotlib.pyplot as plt
    A = np.array([[3.0, 1.0], [0.5, 2.0]])
    fig = plots.unit_circle_map(A)
    outline = fig.axes[1].lines[0].get_xydata()             # the image of the circle
    radii = np.linalg.norm(outline, axis=1)
    s = np.linalg.svd(A, compute_uv=False)
    assert radii.max() == pytest.approx(s[0], rel=1e-3) and radii.min() == pytest.approx(s[1], rel=1e-3)
    assert "ellipse" in fig._suptitle.get_text()
    plt.close(fig)
    for M, words in ((np.array([[2.0, 1.0], [1.0, 0.5]]), "segment"), (np.zeros((2, 2)), "point")):
        fig = plots.unit_circle_map(M)
        assert words in fig._suptitle.get_text()
        plt.close(fig)
    with pytest.raises(ValueError, match="2×2"):
        plots.unit_circle_map(np.eye(3))
    with pytest.raises(ValueError, match="2×2"):
        widgets.circle_rank_slider(A=np.eye(3))
    with pytest.raises(ValueError, match="t = 3.0 is out of range"):
        widgets.circle_rank_slider(t=3.0)


def test_bad_slider_arguments():
    with pytest.raises(ValueError, match="r = 0 is out of range"):
        widgets.photo_rank_slider(np.ones((8, 8)), r=0)
    with pytest.raises(ValueError, match=r"gray levels in \[0, 1\]; got values from 0 to 255 \(a 0..255 image"):
        widgets.photo_rank_slider(np.arange(256.0).reshape(16, 16))
    with pytest.raises(ValueError, match="2-D"):
        widgets.matrix_rank_slider(np.ones(8))
    with pytest.raises(ValueError, match="noise"):
        widgets.noise_rank_slider(noise=-1.0)


def test_plots_return_figures():
    import matplotlib.pyplot as plt
    for fig in (plots.singular_values([3.0, 1.0, 0.0], tol=0.5, default_tol=1e-15, r=1),
                plots.error_curve(np.array([0.5, 0.1, 0.0]), r=2, true_rank=2),
                plots.reconstruction(np.eye(4), np.eye(4), 1, 0.5, 0.25)):
        assert isinstance(fig, matplotlib.figure.Figure)
        plt.close(fig)


def test_lora_calculator_shows_lora_param_count():
    from lora_edu.lora import lora_param_count
    panel = widgets.lora_calculator("llama-2-7b", r=8, targets=["q_proj", "v_proj"])
    assert panel.values["trainable"] == 4_194_304
    panel.controls["r"].value = 16
    panel.controls["self_attn.o_proj"].value = True
    want = lora_param_count("llama-2-7b", 16, ["q_proj", "v_proj", "o_proj"])
    assert panel.values["trainable"] == want.trainable
    assert f"<b>{want.trainable:,}</b> trainable parameters of {want.total:,}" in panel.readout.value
    panel.controls["arch"].value = "llama-2-13b"
    assert panel.values["total"] == lora_param_count("llama-2-13b", 16, ["q_proj", "v_proj", "o_proj"]).total
    for k in ("self_attn.q_proj", "self_attn.v_proj", "self_attn.o_proj"):
        panel.controls[k].value = False
    assert panel.values["trainable"] == 0 and "trains nothing" in panel.readout.value
    for arch, ticked in (("gpt2", ["attn.c_attn"]), ("gpt3-175b", ["attn.q_proj", "attn.v_proj"]),
                         ("llama-2-70b", ["self_attn.q_proj", "self_attn.v_proj"])):
        assert widgets.lora_calculator(arch).values["targets"] == ticked             # the paper's choice, or c_attn
    assert list(widgets.lora_calculator("gpt2", 4, "c_attn").controls["arch"].options) == [
        "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    with pytest.raises(ValueError, match="unknown architecture"):
        widgets.lora_calculator("bert")
