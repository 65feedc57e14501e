from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_edu.rank import (default_tol, effective_rank, is_full_rank, matrix_rank, random_low_rank,
                           rank_by_elimination, singular_values)

RANK1 = [[1, 2, 3], [2, 4, 6], [3, 6, 9]]
RANK2 = [[1, 1, 1], [1, 2, 3], [2, 4, 6]]

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@st.composite
def low_rank(draw):
    m, n = draw(shapes)
    r = draw(st.integers(0, min(m, n)))
    return random_low_rank(m, n, r, seed=draw(st.integers(0, 2**32 - 1))), r


def test_the_two_worked_examples():
    assert matrix_rank(RANK1) == 1 and rank_by_elimination(RANK1) == 1
    assert matrix_rank(RANK2) == 2 and rank_by_elimination(RANK2) == 2
    assert not is_full_rank(RANK2) and is_full_rank(np.eye(3))


def test_accepts_lists_arrays_and_tensors_alike():
    A = np.array(RANK2, dtype=float)
    for x in (RANK2, A, torch.tensor(A), torch.tensor(A, dtype=torch.bfloat16), torch.tensor(RANK2)):
        assert matrix_rank(x) == 2
    np.testing.assert_allclose(singular_values(torch.tensor(A)), singular_values(A))


def test_default_tolerance_is_numpys_rule_with_the_inputs_dtype():
    A = np.array(RANK2, dtype=float)
    s = np.linalg.svd(A, compute_uv=False)
    assert default_tol(A) == pytest.approx(s[0] * 3 * np.finfo(np.float64).eps)
    assert default_tol(A.astype(np.float32)) == pytest.approx(s[0] * 3 * np.finfo(np.float32).eps, rel=1e-5)
    # noise of 1e-10 is above the float64 tolerance but below the float32 one
    B = np.outer([1, 2, 3], [1, 2, 3]) + 1e-10 * np.random.default_rng(0).standard_normal((3, 3))
    assert matrix_rank(B) == 3
    assert matrix_rank(B.astype(np.float32)) == 1
    assert matrix_rank(B, tol=1e-6) == 1  # an explicit tolerance is honoured


@settings(max_examples=60, deadline=None)
@given(low_rank())
def test_random_low_rank_has_exactly_that_rank_and_rank_le_min(Ar):
    A, r = Ar
    assert matrix_rank(A) == r <= min(A.shape)


@settings(max_examples=60, deadline=None)
@given(low_rank(), st.integers(1, 10), st.integers(0, 10), st.integers(0, 2**32 - 1))
def test_rank_of_product_le_min_of_ranks(Ar, p, rb, seed):
    A, ra = Ar
    rb = min(rb, A.shape[1], p)
    B = random_low_rank(A.shape[1], p, rb, seed=seed)
    assert matrix_rank(A @ B) <= min(matrix_rank(A), matrix_rank(B))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-4, 4), min_size=4, max_size=4), min_size=1, max_size=5))
def test_exact_rank_agrees_with_numerical_rank_on_small_integer_matrices(rows):
    assert rank_by_elimination(rows) == matrix_rank(rows)


def test_elimination_steps_end_in_echelon_form():
    r, steps = rank_by_elimination(RANK2, steps=True)
    assert r == 2 and steps[0].action == "start"
    final = steps[-1].matrix
    assert final[2] == (0, 0, 0)  # the third row is twice the second: eliminated
    assert all(isinstance(x, Fraction) for row in final for x in row)
    assert "R3 ← R3 − (2)·R2" in [s.action for s in steps]
    assert "start" in str(steps[0]) and "[" in str(steps[0])


def test_elimination_is_exact_where_floats_are_not():
    A = [[Fraction(1, 3), Fraction(1, 7)], [Fraction(2, 3), Fraction(2, 7)]]
    assert rank_by_elimination(A) == 1
    assert rank_by_elimination([[0, 0], [0, 1]]) == 1  # needs a row swap
    assert rank_by_elimination([[0, 0], [0, 0]]) == 0


def test_effective_rank():
    A = np.diag([3.0, 2.0, 1.0, 0.0])
    assert effective_rank(A, energy=0.9) == 2      # 9+4 = 13 of 14 ≥ 90 %
    assert effective_rank(A, energy=0.5) == 1
    assert effective_rank(A, energy=1.0) == 3
    assert effective_rank(np.zeros((3, 3))) == 0
    with pytest.raises(ValueError, match="energy"):
        effective_rank(A, energy=0)
    with pytest.raises(ValueError, match="energy"):
        effective_rank(A, energy=1.5)


@pytest.mark.parametrize("bad, match", [
    ([1, 2, 3], "2-D"),
    (np.zeros((2, 2, 2)), "3-D"),
    (np.zeros((0, 3)), "empty"),
    ([[1, float("nan")]], "NaN"),
    ([[1, float("inf")]], "inf"),
    ([["a", "b"]], "non-numeric"),
    ([[1, 2], [3]], "equal length"),
    (None, "NoneType"),
    ("abc", "str"),
    (np.array([[1 + 1j]]), "complex"),
    (torch.tensor([[1 + 1j]]), "complex"),
])
def test_hostile_matrices_are_clear_errors(bad, match):
    for f in (matrix_rank, singular_values, is_full_rank, effective_rank, default_tol):
        with pytest.raises(ValueError, match=match):
            f(bad)


@pytest.mark.parametrize("bad, match", [
    ([1, 2, 3], "2-D"), ([], "empty"), ([[]], "empty"), ([[1, 2], [3]], "equal length"),
    ([["a"]], "not a number"), ([[True]], "not a number"), ([[float("nan")]], "finite"),
    (np.array([[np.inf]]), "inf"), ("x", "2-D"),
])
def test_hostile_input_to_elimination(bad, match):
    with pytest.raises(ValueError, match=match):
        rank_by_elimination(bad)


def test_bad_tolerance_and_sizes():
    with pytest.raises(ValueError, match="tol"):
        matrix_rank(RANK1, tol=-1)
    with pytest.raises(TypeError, match="tol"):
        matrix_rank(RANK1, tol="small")
    with pytest.raises(ValueError, match="r = 4 is out of range for a 3×5 matrix"):
        random_low_rank(3, 5, 4)
    with pytest.raises(ValueError, match="integer"):
        random_low_rank(3, 5, 1.5)
    with pytest.raises(ValueError, match="m"):
        random_low_rank(0, 5, 0)


@given(exponent=st.integers(-300, 300), seed=st.integers(0, 5))
@settings(max_examples=40, deadline=None)
def test_rank_and_energy_do_not_depend_on_the_scale(exponent, seed):
    from lora_edu.rank import energy_share, spectrum_summary
    B = random_low_rank(9, 7, 4, seed=seed)
    A = B * 10.0 ** exponent
    assert matrix_rank(A) == matrix_rank(B) == 4
    assert matrix_rank(A, tol=1e-6 * 10.0 ** exponent) == 4
    assert effective_rank(A) == effective_rank(B)
    assert energy_share(A, 2) == pytest.approx(energy_share(B, 2), rel=1e-12)
    s = singular_values(A)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s / 10.0 ** exponent, singular_values(B), rtol=1e-12, atol=1e-12 * s[0] / 10.0 ** exponent)
    assert spectrum_summary(s, k=2) == pytest.approx(spectrum_summary(singular_values(B), k=2), rel=1e-12)


def test_entries_at_the_edge_of_the_float_range():
    assert matrix_rank([[1e308] * 2] * 2) == 1                      # σ₁ = 2e308 itself overflows; the rank does not
    assert singular_values([[1e308] * 2] * 2)[0] == np.inf          # the honest value of a σ beyond the range
    assert effective_rank([[1e308, 0], [0, 1e307]]) == 1
    assert matrix_rank([[5e-324, 0], [0, 5e-324]]) == 2              # subnormal entries: still full rank
    assert matrix_rank(np.full((3, 3), 3e38, dtype=np.float32)) == 1


def test_rank_by_elimination_reads_every_numpy_float_exactly():
    """np.float32 / float16 / longdouble entries are exact binary fractions: Fraction(x) refused them."""
    for t in (np.float16, np.float32, np.float64, np.longdouble):
        assert rank_by_elimination([[t(1.5), 3], [t(0.75), 1.5]]) == 1
        assert rank_by_elimination([[t(1.5), 3], [t(0.75), 1]]) == 2
    assert rank_by_elimination(np.array([[1, 2], [2, 4]], dtype=np.float32)) == 1


def test_rank_by_elimination_reads_numpy_integers_as_exact_integers():
    """np.int64 entries used to keep numpy's wrapping arithmetic inside the Fractions: a rank-2 matrix gave 1."""
    assert rank_by_elimination([list(r) for r in np.array([[1, 2 ** 32], [2 ** 32, 0]])]) == 2
    assert rank_by_elimination([[np.int32(1), np.int32(65536)], [np.int32(65536), np.int32(0)]]) == 2
    with pytest.raises(TypeError, match=r"\bsteps\b must be True or False"):
        rank_by_elimination([[1]], steps="no")
