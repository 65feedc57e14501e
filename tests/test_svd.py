import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_edu.rank import matrix_rank, random_low_rank
from lora_edu.svd import SVDFactorizer, low_rank_approx, rank_factorize, relative_error, storage


def optimal_error(A, r):
    s = np.linalg.svd(A, compute_uv=False)
    total = (s ** 2).sum()
    return np.sqrt((s[r:] ** 2).sum() / total) if total > 0 else 0.0


@st.composite
def matrices(draw, max_side=12):
    m, n = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["gauss", "low-rank", "decaying"]))
    if kind == "gauss":
        return rng.standard_normal((m, n))
    if kind == "low-rank":
        return random_low_rank(m, n, draw(st.integers(0, min(m, n))), seed=rng)
    U, _ = np.linalg.qr(rng.standard_normal((m, min(m, n))))
    V, _ = np.linalg.qr(rng.standard_normal((n, min(m, n))))
    return (U * 0.5 ** np.arange(min(m, n))) @ V.T


@settings(max_examples=80, deadline=None)
@given(matrices())
def test_rank_factorize_reproduces_A_with_r_equal_to_rank(A):
    M, N = rank_factorize(A)
    r = matrix_rank(A)
    assert M.shape == (A.shape[0], r) and N.shape == (r, A.shape[1])
    np.testing.assert_allclose(M @ N, A, atol=1e-10 * max(1.0, np.abs(A).max()))


@settings(max_examples=80, deadline=None)
@given(matrices(), st.data())
def test_low_rank_approx_beats_every_other_factorization_tried(A, data):
    r = data.draw(st.integers(1, min(A.shape)))
    M, N = low_rank_approx(A, r)
    best = relative_error(A, M, N)
    assert best <= optimal_error(A, r) * 1.001 + 1e-12
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rivals = []
    P = rng.standard_normal((A.shape[0], r))                    # a random M ...
    rivals.append((P, np.linalg.lstsq(P, A, rcond=None)[0]))    # ... with the best N for it
    cols = rng.choice(A.shape[1], r, replace=False)             # r columns of A ...
    rivals.append((A[:, cols], np.linalg.lstsq(A[:, cols], A, rcond=None)[0]))  # ... combined at best
    rivals.append((P, rng.standard_normal((r, A.shape[1]))))    # plain random factors
    for Mx, Nx in rivals:
        assert best <= relative_error(A, Mx, Nx) + 1e-9


@pytest.mark.parametrize("kind", ["gauss", "decaying", "low-rank+noise"])
@pytest.mark.parametrize("shape, r", [((300, 200), 5), ((200, 300), 20), ((256, 256), 10)])
def test_randomized_path_is_within_1_001_of_optimal(kind, shape, r):
    rng = np.random.default_rng(1)
    m, n = shape
    if kind == "gauss":
        A = rng.standard_normal(shape)
    elif kind == "decaying":
        U, _ = np.linalg.qr(rng.standard_normal((m, min(shape))))
        V, _ = np.linalg.qr(rng.standard_normal((n, min(shape))))
        A = (U * np.exp(-np.arange(min(shape)) / 10)) @ V.T
    else:
        A = random_low_rank(m, n, r, seed=2) + 1e-9 * rng.standard_normal(shape)
    for method in ("randomized", "auto"):
        M, N = low_rank_approx(A, r, method=method)
        assert M.shape == (m, r) and N.shape == (r, n)
        assert relative_error(A, M, N) <= optimal_error(A, r) * 1.001


def test_randomized_keeps_float32_and_matches_full_svd():
    A = np.random.default_rng(3).standard_normal((300, 200)).astype(np.float32)
    M, N = low_rank_approx(A, 8, method="randomized")
    assert M.dtype == np.float32
    assert relative_error(A, M, N) <= optimal_error(A.astype(np.float64), 8) * 1.001
    Mf, Nf = low_rank_approx(torch.tensor(A), 8, method="full")
    assert relative_error(A, Mf, Nf) == pytest.approx(optimal_error(A.astype(np.float64), 8), rel=1e-5)


def test_the_100_by_1000_rank_10_example_stores_11000_numbers():
    A = random_low_rank(100, 1000, 10, seed=0)
    M, N = rank_factorize(A)
    assert M.shape == (100, 10) and N.shape == (10, 1000)
    assert M.size + N.size == 11_000 == storage(100, 1000, 10).numbers
    assert storage(100, 1000, 10).share == pytest.approx(0.11)
    f = SVDFactorizer(A)
    assert f.stored(10) == (11_000, 0.11)
    assert f.error(10) < 1e-12


def test_factorizer_agrees_with_low_rank_approx_and_eckart_young():
    A = np.random.default_rng(5).standard_normal((40, 30))
    f = SVDFactorizer(A)
    errors = f.errors()
    assert errors.shape == (30,) and errors[-1] == pytest.approx(0, abs=1e-12)
    assert np.all(np.diff(errors) <= 1e-15)
    for r in (1, 7, 30):
        assert f.error(r) == pytest.approx(optimal_error(A, r), abs=1e-12)
        assert f.error(r) == pytest.approx(np.linalg.norm(A - f.approx(r)) / np.linalg.norm(A), abs=1e-12)
        M, N = low_rank_approx(A, r, method="full")
        np.testing.assert_allclose(f.approx(r), M @ N, atol=1e-10)
    assert f.stored(7).numbers == 7 * 70
    assert SVDFactorizer(np.zeros((3, 4))).error(2) == 0.0


def test_relative_error_edge_cases():
    Z = np.zeros((2, 2))
    assert relative_error(Z, np.zeros((2, 1)), np.zeros((1, 2))) == 0.0
    assert relative_error(Z, np.ones((2, 1)), np.ones((1, 2))) == float("inf")
    with pytest.raises(ValueError, match=r"M @ N must have A's shape \(2, 2\)"):
        relative_error(Z, np.ones((3, 1)), np.ones((1, 2)))


@pytest.mark.parametrize("r, match", [
    (0, r"r = 0 is out of range for a 4×6 matrix; expected 1 ≤ r ≤ 4"),
    (-1, "out of range"), (5, "expected 1 ≤ r ≤ 4"),
    (2.0, "integer"), ("2", "integer"), (True, "integer"), (None, "integer"),
])
def test_rank_out_of_range_is_a_clear_error(r, match):
    A = np.ones((4, 6))
    f = SVDFactorizer(A)
    for call in (lambda r: low_rank_approx(A, r), f.approx, f.error, f.stored, f.factors):
        with pytest.raises(ValueError, match=match):
            call(r)


def test_numpy_integer_rank_is_accepted_and_method_is_checked():
    A = np.ones((4, 6))
    M, N = low_rank_approx(A, np.int64(1))
    assert M.shape == (4, 1)
    with pytest.raises(ValueError, match="method"):
        low_rank_approx(A, 1, method="fast")


@pytest.mark.parametrize("bad, match", [
    (np.ones(3), "1-D"), (np.zeros((0, 2)), "empty"), ([[1.0, np.nan]], "NaN"), ([[np.inf, 1.0]], "inf"),
])
def test_hostile_matrices(bad, match):
    for f in (rank_factorize, lambda A: low_rank_approx(A, 1), SVDFactorizer):
        with pytest.raises(ValueError, match=match):
            f(bad)


def _spectrum_matrix(m, n, s, seed):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (U * s) @ V.T


@pytest.mark.parametrize("m, n, r, gap, decay", [(217, 255, 23, 1.03, 0.999), (127, 261, 12, 1.07, 1.0),
                                                 (200, 200, 10, 1.05, 1.0), (121, 220, 4, 1.0005, 1.0),
                                                 (150, 290, 5, 1.03, 0.999)])
def test_flat_spectra_keep_the_promise(m, n, r, gap, decay):
    """A flat tail with a small gap at r: power iterations converge slowly, their gains can fall and then rise;
    the randomized path must not stop early (it falls back to the full SVD when it cannot converge)."""
    s = decay ** np.arange(min(m, n))
    s[:r] *= gap
    A = _spectrum_matrix(m, n, s, seed=m)
    for dtype in (np.float64, np.float32):
        M, N = low_rank_approx(A.astype(dtype), r, method="randomized")
        assert M.dtype == dtype
        assert relative_error(A, M.astype(np.float64), N.astype(np.float64)) <= optimal_error(A, r) * 1.001


@pytest.mark.parametrize("plateau, level, drop, r", [(60, 0.999, 0.5, 16), (40, 0.999, 0.8, 16), (60, 0.99, 0.95, 24),
                                                     (90, 0.999, 0.5, 4)])
def test_a_plateau_then_a_drop_keeps_the_promise(plateau, level, drop, r):
    """A flat plateau around r, then a drop: the oversampled directions converge fast, so the first gains fall
    steeply while the plateau is still converging slowly — a stopping rule that trusts the gains alone stops at
    1.002–1.005× the optimum. The rate (σ_k / σ_r)² keeps it going."""
    s = np.r_[level ** np.arange(plateau), drop * 0.9 ** np.arange(160 - plateau)]
    A = _spectrum_matrix(200, 160, s, seed=plateau)
    for seed in range(3):
        M, N = low_rank_approx(A, r, method="randomized", seed=seed)
        assert relative_error(A, M, N) <= optimal_error(A, r) * 1.001


@given(exponent=st.integers(-100, 300), seed=st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_every_scale_from_1e_100_to_1e300_gives_the_same_answers(exponent, seed):
    B = _spectrum_matrix(120, 90, 0.9 ** np.arange(90), seed)
    B /= np.abs(B).max()
    A = B * 10.0 ** exponent
    for method in ("randomized", "full"):
        M, N = low_rank_approx(A, 8, method=method)
        assert np.isfinite(M).all() and np.isfinite(N).all()
        assert relative_error(A, M, N) <= optimal_error(B, 8) * 1.001
    f, g = SVDFactorizer(A), SVDFactorizer(B)
    np.testing.assert_allclose(f.errors(), g.errors(), rtol=1e-12)
    np.testing.assert_allclose(f.approx(8) / 10.0 ** exponent, g.approx(8), atol=1e-12)
    assert matrix_rank(A) == matrix_rank(B) == 90


@pytest.mark.parametrize("top, tail, r", [(1, 3e-5, 20), (3, 1e-4, 10), (10, 1e-4, 40), (5, 1e-3, 20)])
def test_a_small_flat_tail_keeps_the_promise(top, tail, r):
    """A few large σ and a flat tail with a tiny share of the energy: float32 iterations cannot see the gains that
    matter (they are below its rounding), so float64 takes over. They used to stop at 1.003–1.023×."""
    s = np.r_[np.ones(top), np.linspace(tail, tail / 2, 256 - top)]
    A = _spectrum_matrix(300, 256, s, seed=top)
    for dtype in (np.float64, np.float32):
        M, N = low_rank_approx(A.astype(dtype), r)
        assert relative_error(A, M.astype(np.float64), N.astype(np.float64)) <= optimal_error(A, r) * 1.001


def test_float32_low_rank_plus_small_noise_is_as_good_as_the_full_svd():
    """float32 input whose error is below float32's resolution of ‖A‖²: the randomized path did 9× worse than
    the full SVD (it stopped after the range finder); now it matches it."""
    for noise in (1e-6, 1e-8):
        A = _spectrum_matrix(200, 150, np.r_[np.ones(20), np.full(130, noise)], seed=1).astype(np.float32)
        fast = relative_error(A, *low_rank_approx(A, 20, method="randomized"))
        full = relative_error(A, *low_rank_approx(A, 20, method="full"))
        assert fast <= full * 1.01
