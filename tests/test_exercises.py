"""Every check: the right answer passes, the placeholder is "not attempted", typical wrong answers get their
specific message, and an answer that raises is reported, never propagated."""
import re
import signal
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

from lora_edu.exercises import Exercise, Verdict, ch1, ch2, ch3, ch4, ch5, ch6
from lora_edu.rank import effective_rank, energy_share, matrix_rank, singular_values


def status(ex, answer):
    return ex.verdict(answer).status


def message(ex, answer):
    v = ex.verdict(answer)
    assert v.status == "wrong", v
    return v.message


def not_implemented(*args):
    raise NotImplementedError


def boom(*args):
    raise ZeroDivisionError("division by zero")


ALL = [ch1.rank_two, ch1.predict_product_rank, ch1.lose_rank, ch1.window, ch1.zero_row_sums,
       ch2.factor_ranks, ch2.factor_it, ch2.ellipse_error, ch2.compress, ch2.break_even,
       ch3.layer_shapes, ch3.bottleneck_rank, ch3.blind_spot, ch3.fused_layer,
       ch4.adapter_size, ch4.lora_forward, ch4.merge_weight, ch4.budget_rank,
       ch5.adapter_params, ch5.next_byte, ch5.lora_update, ch5.greedy,
       ch6.directions_for, ch6.cheapest_rank, ch6.chance_overlap]


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.number)
def test_placeholder_is_not_attempted_and_correct_message_does_not_depend_on_answer(ex, capsys):
    assert status(ex, ...) == "not attempted"
    ex.check(...)
    assert capsys.readouterr().out.startswith(f"… Exercise {ex.number} not attempted yet")
    assert status(ex, not_implemented) in ("not attempted", "wrong")   # functions: not attempted


@pytest.mark.parametrize("ex", [ch1.window, ch2.compress, ch6.directions_for, ch6.cheapest_rank,
                                ch6.chance_overlap], ids=lambda e: e.number)
def test_function_exercises(ex):
    assert status(ex, not_implemented) == "not attempted"
    msg = message(ex, boom)
    assert "raised ZeroDivisionError: division by zero" in msg
    assert "should be a function" in message(ex, 42)


def test_hints_get_stronger_then_repeat_and_solution_prints(capsys):
    ex = Exercise("9.9", "demo", lambda a: None, hints=["weak", "strong"], solution="answer = 1")
    for _ in range(3):
        ex.hint()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Hint 1 of 2 for exercise 9.9: weak"
    for line in out[1:]:                          # the last hint says so the first time it is shown
        assert line.startswith("Hint 2 of 2 for exercise 9.9: strong (that was the last hint; .solution()")
    ex.solution()
    assert "answer = 1" in capsys.readouterr().out
    for e in ALL:
        assert e.hints and e._solution


def test_a_judge_that_crashes_is_reported():
    ex = Exercise("9.8", "fragile", lambda a: 1 / 0, hints=["h"], solution="s")
    v = ex.verdict(3)
    assert v.status == "wrong" and "ZeroDivisionError" in v.message
    assert str(Verdict("correct", "x")) == "✓ x" and Verdict("correct", "x").ok


# ---- chapter 1 ---------------------------------------------------------------------------------------------

def test_rank_two():
    ok = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1], [2, 3, 2, 3]]
    assert status(ch1.rank_two, ok) == "correct"
    assert status(ch1.rank_two, np.outer([1, 2, 3, 4], [1, 0, 0, 1]) + np.outer([0, 1, 0, 0], [0, 1, 1, 0])) == "correct"
    assert "your matrix has rank 3; the exercise asks for rank 2" in message(ch1.rank_two, np.diag([1, 2, 3, 0]))
    assert "shape (3, 3); expected (4, 4)" in message(ch1.rank_two, np.eye(3))
    assert "2-D" in message(ch1.rank_two, [1, 2, 3, 4])
    assert "rows of equal length." in message(ch1.rank_two, [[1, 2], [3]])
    assert status(ch1.rank_two, [[Fraction(1), 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1], [2, 3, 2, 3]]) == "correct"
    assert "NaN" in message(ch1.rank_two, [[np.nan] * 4] * 4)
    assert "non-numeric" in message(ch1.rank_two, [["a"] * 4] * 4)


def test_predict_product_rank():
    assert status(ch1.predict_product_rank, 2) == "correct"
    assert status(ch1.predict_product_rank, 2.0) == "correct"
    assert "property 2 gives an upper bound for it" in message(ch1.predict_product_rank, 3)
    assert "does not drop to 1 here" in message(ch1.predict_product_rank, 1)
    assert "should be a number" in message(ch1.predict_product_rank, "two")
    assert "whole number" in message(ch1.predict_product_rank, 2.5)
    assert "cannot be negative" in message(ch1.predict_product_rank, -1)
    assert status(ch1.predict_product_rank, np.array(2)) == "correct"


def test_lose_rank():
    A, B = np.diag([1, 1, 0]), np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert status(ch1.lose_rank, (A, B)) == "correct"
    assert status(ch1.lose_rank, [A.tolist(), B.tolist()]) == "correct"
    assert status(ch1.lose_rank, (A, np.array([[1, 1, 0], [0, 0, 0], [1, 2, 0]]))) == "correct"   # another plane
    assert "nothing was lost" in message(ch1.lose_rank, (A, A))
    assert "B has rank 3; the exercise asks for rank 2" in message(ch1.lose_rank, (A, np.eye(3)))
    assert "A has rank 1" in message(ch1.lose_rank, (np.diag([1, 0, 0]), B))
    assert "A has shape (2, 2); expected (3, 3)" in message(ch1.lose_rank, (np.eye(2), B))
    assert "answer with a pair (A, B)" in message(ch1.lose_rank, A)
    assert "answer with a pair (A, B)" in message(ch1.lose_rank, (A, B, A))
    assert "NaN" in message(ch1.lose_rank, (A, np.full((3, 3), np.nan)))


_solved = {"singular_values": singular_values}
exec(ch1.window._solution.split("The rank counts")[0], _solved)   # the worked solution that .solution() prints
_window = _solved["window"]


def test_window():
    assert status(ch1.window, _window) == "correct"
    s = lambda M: singular_values(M)
    assert "too narrow at lo" in message(ch1.window, lambda M, r: (s(M)[r - 1] / 2, s(M)[r - 1]))
    assert "inside your window" in message(ch1.window, lambda M, r: (0.0, s(M)[r - 1]))           # lo too low
    assert "inside your window" in message(ch1.window, lambda M, r: (_window(M, r)[0], 2 * s(M)[0]))
    assert "too narrow at hi" in message(ch1.window, lambda M, r: (_window(M, r)[0], s(M)[r - 1] * 0.9))
    off_by_one = lambda M, r: (s(M)[r - 1], s(M)[r - 2] if r > 1 else 2 * s(M)[0])               # σ_r, σ_(r−1)
    assert status(ch1.window, off_by_one) == "wrong"
    assert "expected a pair (lo, hi)" in message(ch1.window, lambda M, r: 3)
    assert "expected 0 ≤ lo ≤ hi" in message(ch1.window, lambda M, r: (2.0, 1.0))
    assert "should be a number" in message(ch1.window, lambda M, r: ("0", "1"))
    assert "should be a number" in message(ch1.window, lambda M, r: (10 ** 5000, 1))
    X = ch1.window.data["X"]
    assert X.shape == (6, 6) and matrix_rank(X, tol=1e-6) == 2 and matrix_rank(X) == 6


def test_zero_row_sums():
    assert status(ch1.zero_row_sums, 3) == "correct"
    assert "what do the four columns add up to" in message(ch1.zero_row_sums, 4)
    assert "min(10, 4) = 4" in message(ch1.zero_row_sums, 10)
    assert "not the largest" in message(ch1.zero_row_sums, 2)
    assert "cannot be negative" in message(ch1.zero_row_sums, -1)


# ---- chapter 2 ---------------------------------------------------------------------------------------------

def test_factor_ranks():
    assert status(ch2.factor_ranks, (20, 30)) == "correct"
    assert status(ch2.factor_ranks, [20.0, np.int64(30)]) == "correct"
    assert "rank Y = 19 is impossible" in message(ch2.factor_ranks, (19, 30))
    assert "can be smaller than 30" in message(ch2.factor_ranks, (30, 30))
    assert "rank Y can be larger than 20" in message(ch2.factor_ranks, (20, 20))
    assert "only 30 columns" in message(ch2.factor_ranks, (20, 80))
    assert "cannot exceed the largest" in message(ch2.factor_ranks, (30, 20))
    assert "pair (smallest, largest)" in message(ch2.factor_ranks, 20)
    # the claim itself: both ends are reached by real factors of a rank-20 product
    rng = np.random.default_rng(0)
    C, Z20 = rng.standard_normal((100, 20)), rng.standard_normal((20, 80))
    Y_lo, Z_lo = np.hstack([C, np.zeros((100, 10))]), np.vstack([Z20, rng.standard_normal((10, 80))])
    Y_hi, Z_hi = rng.standard_normal((100, 30)), rng.standard_normal((30, 20)) @ rng.standard_normal((20, 80))
    for Y, Z, want in ((Y_lo, Z_lo, 20), (Y_hi, Z_hi, 30)):
        assert matrix_rank(Y @ Z) == 20 and matrix_rank(Y) == want


def test_factor_it():
    C = ch2.factor_it.data["C"]
    M, N = C[:, :2], np.array([[1, 0, 2], [0, 1, -1]])
    assert status(ch2.factor_it, (M, N)) == "correct"
    from lora_edu.svd import rank_factorize
    assert status(ch2.factor_it, rank_factorize(C)) == "correct"
    assert status(ch2.factor_it, (..., N)) == "not attempted"
    assert "M has shape (3, 3); expected (m, r) = (3, 2)" in message(ch2.factor_it, (C, N))
    assert "N has shape (3, 3); expected (r, n) = (2, 3)" in message(ch2.factor_it, (M, C))
    assert "largest entry difference is 8" in message(ch2.factor_it, (M, np.array([[1, 0, 0], [0, 1, -1]])))
    import torch
    U, S, Vh = torch.linalg.svd(torch.tensor(C, dtype=torch.float32))
    assert status(ch2.factor_it, (U[:, :2] * S[:2], Vh[:2])) == "correct"   # float32 factors pass
    assert "pair (M, N)" in message(ch2.factor_it, C)


def test_ellipse_error():
    assert status(ch2.ellipse_error, np.sqrt(0.1)) == "correct"
    assert status(ch2.ellipse_error, 0.3162) == "correct" and status(ch2.ellipse_error, 0.32) == "correct"
    assert "compares σ₂ with σ₁ only" in message(ch2.ellipse_error, 1 / 3)
    assert "ratio of energies" in message(ch2.ellipse_error, 0.1)
    assert "between 0 and 1" in message(ch2.ellipse_error, 3)
    assert "0.316" not in message(ch2.ellipse_error, 0.5)                 # never hands over the answer
    U, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((2, 2)))
    A = U @ np.diag([3.0, 1.0])                                           # semi-axes 3 and 1
    from lora_edu.svd import SVDFactorizer
    assert status(ch2.ellipse_error, SVDFactorizer(A).error(1)) == "correct"


def test_compress():
    from lora_edu.svd import low_rank_approx

    def good(A, share):
        m, n = A.shape
        return low_rank_approx(A, max(1, min(min(m, n), int(share * m * n // (m + n)))))

    def too_big(A, share):
        m, n = A.shape
        return low_rank_approx(A, min(m, n))

    def no_sigma(A, share):
        m, n = A.shape
        r = max(1, int(share * m * n // (m + n)))
        U, s, Vt = np.linalg.svd(A, full_matrices=False)
        return U[:, :r], Vt[:r]

    def float32(A, share):
        M, N = good(A.astype(np.float32), share)
        return M, N

    assert status(ch2.compress, good) == "correct" and status(ch2.compress, float32) == "correct"
    assert "more than 20% of 1,200" in message(ch2.compress, too_big)
    assert "a larger rank would too" in message(ch2.compress, lambda A, s: low_rank_approx(A, 1))
    assert "Is MN the sum of the" in message(ch2.compress, no_sigma)
    assert "compress(A of shape (40, 30), share=0.2) should return a pair" in message(ch2.compress, lambda A, s: A)
    assert "compress(A of shape (40, 30), share=0.2) raised ZeroDivisionError" in message(ch2.compress, boom)


def test_break_even():
    assert status(ch2.break_even, 187) == "correct"
    assert "150,400 numbers — not fewer than the 150,000" in message(ch2.break_even, 188)
    assert "a larger rank than 186 still stores fewer" in message(ch2.break_even, 186)


# ---- chapter 3 ---------------------------------------------------------------------------------------------

def test_layer_shapes():
    assert status(ch3.layer_shapes, ((768, 3072), (3072, 768))) == "correct"
    assert status(ch3.layer_shapes, [np.array([768, 3072]), [3072, 768]]) == "correct"
    assert "which dimension do the rows of W match" in message(ch3.layer_shapes, ((3072, 768), (768, 3072)))
    assert "which way round PyTorch stores it" in message(ch3.layer_shapes, ((768, 3072), (768, 3072)))
    assert "W is not (768, 768)" in message(ch3.layer_shapes, ((768, 768), (3072, 768)))
    assert "two shapes, ((a, b), (c, d))" in message(ch3.layer_shapes, (768, 3072))
    assert "two shapes" in message(ch3.layer_shapes, ("768x3072", (3072, 768)))
    assert "answer with a pair" in message(ch3.layer_shapes, 768)


def test_bottleneck_rank():
    assert status(ch3.bottleneck_rank, 16) == "correct"
    assert "cannot reach 768" in message(ch3.bottleneck_rank, 768)
    assert "not the largest" in message(ch3.bottleneck_rank, 8)
    rng = np.random.default_rng(0)                                   # the claim: random factors reach it
    assert matrix_rank(rng.standard_normal((768, 16)) @ rng.standard_normal((16, 768))) == 16


def test_blind_spot():
    W = ch3.blind_spot.data["W"]
    assert matrix_rank(W) == 2
    assert status(ch3.blind_spot, np.array([1.0, 1.0, -1.0, 0.0, 0.0])) == "correct"
    assert status(ch3.blind_spot, [0, 0, 1, 0, -2]) == "correct"            # row 3 = 2 · row 5
    assert status(ch3.blind_spot, np.linalg.svd(W.T)[2][-1]) == "correct"
    assert status(ch3.blind_spot, np.linalg.svd(W.T)[2][-1].reshape(5, 1)) == "correct"
    assert "not zero: the layer sees this input" in message(ch3.blind_spot, [1, 0, 0, 0, 0])
    assert "find a nonzero x" in message(ch3.blind_spot, np.zeros(5))
    assert "the layer takes 5 inputs" in message(ch3.blind_spot, np.ones(3))
    assert "the layer takes 5 inputs" in message(ch3.blind_spot, np.ones((2, 5)))
    assert "is None" in message(ch3.blind_spot, None)
    assert "NaN" in message(ch3.blind_spot, [np.nan] * 5)


def test_fused_layer():
    import torch
    import torch.nn as nn
    first, second = ch3.fused_layer.data["layers"]()
    one = nn.Linear(3, 2)
    with torch.no_grad():
        one.weight.copy_(second.weight @ first.weight)
        one.bias.copy_(second.weight @ first.bias + second.bias)
    assert status(ch3.fused_layer, one) == "correct"
    assert status(ch3.fused_layer, one.double()) == "correct"
    with torch.no_grad():
        one.bias.copy_(second.bias)                                  # the common slip: b₂ alone
    assert "what does the pair output when x = 0" in message(ch3.fused_layer, one)
    with torch.no_grad():
        one.bias.copy_(second.weight @ first.bias + second.bias)
        one.weight.copy_((first.weight.T @ second.weight.T).T * 1.5)
    assert "its weight is off" in message(ch3.fused_layer, one)
    assert "nn.Linear(2, 3)" in message(ch3.fused_layer, nn.Linear(2, 3))
    assert "no bias" in message(ch3.fused_layer, nn.Linear(3, 2, bias=False))
    assert "answer with an nn.Linear" in message(ch3.fused_layer, nn.Sequential(first, second))
    a, b = ch3.fused_layer.data["layers"]()                          # fresh copies: the check's own are safe
    assert torch.equal(a.weight, first.weight) and torch.equal(b.bias, second.bias)


# ---- chapter 4 ---------------------------------------------------------------------------------------------

def test_adapter_size():
    assert status(ch4.adapter_size, 65_536) == "correct"
    assert "full 4096 × 4096 matrix" in message(ch4.adapter_size, 4096 * 4096)
    assert "only one factor" in message(ch4.adapter_size, 8 * 4096)
    assert "is not it" in message(ch4.adapter_size, 3)


def test_lora_forward_and_merge_weight():
    good = lambda X, W, b, M, N, s: X @ W + (X @ M) @ N * s + b
    assert status(ch4.lora_forward, good) == "correct"
    assert "multiplied by scale" in message(ch4.lora_forward, lambda X, W, b, M, N, s: X @ W + X @ M @ N + b)
    assert "base layer alone" in message(ch4.lora_forward, lambda X, W, b, M, N, s: X @ W + b)
    assert "raised ValueError" in message(ch4.lora_forward, lambda X, W, b, M, N, s: X @ W + X @ N @ M * s + b)
    assert status(ch4.merge_weight, lambda W, M, N, s: W + M @ N * s) == "correct"
    assert "the scale is missing" in message(ch4.merge_weight, lambda W, M, N, s: W + M @ N)
    assert "W's shape" in message(ch4.merge_weight, lambda W, M, N, s: (W + M @ N * s).T)


def test_budget_rank():
    assert status(ch4.budget_rank, 20) == "correct"
    assert "9,961,472" in message(ch4.budget_rank, 19)
    assert "a smaller rank does too" in message(ch4.budget_rank, 21)
    assert "at least 1" in message(ch4.budget_rank, 0)
    assert "at most 4096" in message(ch4.budget_rank, 5000)


def test_adapter_params():
    assert status(ch5.adapter_params, 16_384) == "correct"
    assert "one layer's c_attn" in message(ch5.adapter_params, 4096)
    assert "only N" in message(ch5.adapter_params, 4 * 4 * 768)
    assert "full fine-tuning" in message(ch5.adapter_params, 4 * 256 * 768)
    assert "r = 4" in message(ch5.adapter_params, 32_768)
    assert "all sixteen" in message(ch5.adapter_params, 65_536)
    assert "not three" in message(ch5.adapter_params, 24_576)
    assert ".hint()" in message(ch5.adapter_params, 1234)


def _next_byte(model, text):
    import torch
    from lora_edu.gpt import encode
    with torch.no_grad():
        return chr(model(encode(text)[None])[0, -1].argmax().item())


def test_next_byte_and_greedy():
    import torch
    from lora_edu.gpt import encode, load_pretrained
    assert status(ch5.next_byte, _next_byte) == "correct"
    base = load_pretrained()

    def first(m, t):
        with torch.no_grad():
            return chr(m(encode(t)[None])[0, 0].argmax().item())
    assert "*first* position" in message(ch5.next_byte, first)
    assert "token id" in message(ch5.next_byte, lambda m, t: m(encode(t)[None])[0, -1].argmax().item())
    assert "only on the last character" in message(ch5.next_byte, lambda m, t: _next_byte(m, t[-1]))
    assert "use the model it is given" in message(ch5.next_byte, lambda m, t: _next_byte(base, t))
    assert "short" not in message(ch5.next_byte, lambda m, t: _next_byte(m, t[-4:]))   # rejected: context matters
    assert "raised ZeroDivisionError" in message(ch5.next_byte, boom)

    def greedy(model, prompt, n):
        for _ in range(n):
            prompt += _next_byte(model, prompt[-model.config.block_size:])
        return prompt
    assert status(ch5.greedy, greedy) == "correct"
    assert "only the new bytes" in message(ch5.greedy, lambda m, p, n: greedy(m, p, n)[len(p):])
    assert "no sampling" in message(ch5.greedy, lambda m, p, n: p + _next_byte(m, p) * n)

    def untrimmed(model, prompt, n):                       # fine until the text outgrows the context
        for _ in range(n):
            prompt += _next_byte(model, prompt)
        return prompt
    assert "exceeds the context of 256 bytes" in message(ch5.greedy, untrimmed)
    model = ch5._model()                                   # the loop is what generate(temperature=0) does
    for prompt, n in [("def ", 8), ("The ", 12), ("Return the value.\n" * 14, 6)]:
        assert greedy(model, prompt, n) == model.generate(prompt, n, temperature=0)


def test_lora_update():
    assert status(ch5.lora_update, lambda l: l.M @ l.N * l.scaling) == "correct"
    assert "M @ N alone" in message(ch5.lora_update, lambda l: l.M @ l.N)
    assert "rsLoRA" in message(ch5.lora_update, lambda l: l.M @ l.N * (l.alpha / l.r))
    assert "(out, in) layout" in message(ch5.lora_update, lambda l: (l.M @ l.N * l.scaling).T)
    assert "layer.base(x)" in message(ch5.lora_update, lambda l: 0.5 * l.M @ l.N * l.scaling)


def _directions_for(s, share):
    held = np.cumsum(np.square(s)) / np.sum(np.square(s))
    return int(np.argmax(held >= share - 1e-12)) + 1


def test_directions_for():
    assert status(ch6.directions_for, _directions_for) == "correct"
    assert status(ch6.directions_for, lambda s, share: np.int64(_directions_for(s, share))) == "correct"
    assert "square the singular values" in message(ch6.directions_for, lambda s, share: _directions_for(np.sqrt(s), share))
    assert "not positions" in message(ch6.directions_for, lambda s, share: _directions_for(s, share) - 1)
    assert "includes equal" in message(ch6.directions_for,
                                       lambda s, share: int(np.argmax(np.cumsum(s**2) / np.sum(s**2) > share)) + 1)
    assert "should be a whole number" in message(ch6.directions_for, lambda s, share: 2.5)


def _cheapest(rows, tol):
    lora = [row for row in rows if row["r"] != "full"]
    best = min(row["val_loss"] for row in lora)
    return min(row["r"] for row in lora if row["val_loss"] <= best + tol)


def test_cheapest_rank():
    assert status(ch6.cheapest_rank, _cheapest) == "correct"
    best = lambda rows, tol: min((r for r in rows if r["r"] != "full"), key=lambda r: r["val_loss"])["r"]
    assert "you returned the best rank" in message(ch6.cheapest_rank, best)
    with_full = lambda rows, tol: min(rows, key=lambda r: r["val_loss"])["r"]
    assert "leave out the full row" in message(ch6.cheapest_rank, with_full)
    assert "the answer is r = " in message(ch6.cheapest_rank, lambda rows, tol: 1)


def test_chance_overlap():
    from lora_edu.lora import subspace_similarity
    assert status(ch6.chance_overlap, lambda i, j, n: max(i, j) / n) == "correct"
    rng = np.random.default_rng(0)
    simulated = lambda i, j, n: np.mean([subspace_similarity(rng.standard_normal((n, i)), rng.standard_normal((n, j)),
                                                             i, j) for _ in range(100)])
    assert status(ch6.chance_overlap, simulated) == "correct"
    assert "divides it by min(i, j)" in message(ch6.chance_overlap, lambda i, j, n: i * j / n)
    assert "which of i and j" in message(ch6.chance_overlap, lambda i, j, n: min(i, j) / n)
    assert "about 0.25" in message(ch6.chance_overlap, lambda i, j, n: 0.5)


def test_no_verdict_gives_the_answer_away():
    """A ✓ says it is correct and adds a thought that spoils nothing; a ✗ on a value never names the value."""
    for ex, answer in [(ch2.break_even, 187), (ch3.bottleneck_rank, 16),
                       (ch4.adapter_size, 65_536), (ch4.budget_rank, 20), (ch5.adapter_params, 16_384)]:
        assert ex.verdict(answer).ok
        for guess in (answer - 1, answer + 1, 1, answer):
            said = ex.verdict(guess).message.split("—", 1)[1]
            numbers = re.findall(r"(?<![\d,.])\d+(?:,\d{3})*(?![\d])", said)
            assert f"{answer:,}" not in numbers and str(answer) not in numbers, (ex, guess, said)
    for ex, answer, guesses, spoiler in [(ch1.predict_product_rank, 2, (0, 1, 3, 4), r"= 2\b|\bis 2\b"),
                                         (ch1.zero_row_sums, 3, (0, 1, 2, 4, 5), r"\b3 of them|at most 3|= 3\b")]:
        for guess in guesses:
            assert not re.search(spoiler, ex.verdict(guess).message), (ex, guess)
    spoilers = {"1.2": "full row rank", "1.5": "cost one dimension", "2.1": "r·(m + n)", "3.1": "(in, out)",
                "3.4": "Wᵀ", "4.1": "r·(in + out)", "4.2": "X M N", "4.3": "W + M N", "5.2": "argmax",
                "5.3": "M N", "5.4": "temperature", "6.3": "max(i, j)"}
    for ex in ALL:
        if ex.number in spoilers:
            assert spoilers[ex.number] not in ex._correct, ex.number


# ---- checks that cannot be broken by what they check --------------------------------------------------------

def test_a_function_that_never_returns_is_stopped():
    def forever(M, r):
        while True:
            pass

    def careless(M, r):                      # swallows every error, but not the clock
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass

    for fn in (forever, careless):
        started = time.monotonic()
        v = ch1.window.verdict(fn, time_limit=0.5)
        assert v.status == "error" and "did not finish within 0.5 s" in v.message, v
        assert time.monotonic() - started < 5
    assert ch1.window.verdict(_window, time_limit=5).ok          # the clock is off again afterwards
    time.sleep(0.7)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_answer_that_never_finishes_being_checked_is_stopped():
    import torch.nn as nn

    class Endless(nn.Linear):              # not a function: the check calls it itself
        def forward(self, x):
            while True:
                pass
    v = ch3.fused_layer.verdict(Endless(3, 2), time_limit=0.5)
    assert v.status == "error" and "did not finish within 0.5 s" in v.message


def test_sys_exit_and_other_escapes_become_a_cross():
    def leave(M, r):
        sys.exit(3)
    v = ch1.window.verdict(leave)
    assert v.status == "error" and "called sys.exit(3)" in v.message and str(v).startswith("✗")
    assert "called sys.exit()" in ch1.window.verdict(lambda M, r: sys.exit()).message

    class Leaves:
        def __array__(self, *args, **kwargs):
            raise SystemExit("bye")
    assert ch1.rank_two.verdict(Leaves()).status in ("wrong", "error")
    with pytest.raises(KeyboardInterrupt):                      # an interrupt still stops the check
        ch1.window.verdict(lambda M, r: (_ for _ in ()).throw(KeyboardInterrupt))


def test_non_real_matrices_are_rejected():
    rank2_real = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    for complex_answer in (rank2_real + 1j * np.eye(4), rank2_real.astype(complex), (rank2_real + 0j).tolist()):
        assert "must be a real numeric matrix; got complex" in message(ch1.rank_two, complex_answer)
    import torch
    assert "real matrix" in message(ch1.rank_two, torch.tensor(rank2_real, dtype=torch.complex64))
    assert "must be a real numeric matrix" in message(ch2.factor_it, (np.ones((3, 2)) * 1j, np.ones((2, 3))))


def test_the_packages_own_solution_is_not_accepted_and_is_put_back():
    import lora_edu.rank as rank_module
    import lora_edu.sweep as sweep_module
    from lora_edu.gpt import GPT
    from lora_edu.rank import spectrum_summary
    originals = (rank_module.spectrum_summary, rank_module.effective_rank, sweep_module.cheapest_rank,
                 GPT.generate)
    assert "lora_edu.rank.spectrum_summary" in message(ch6.directions_for,
                                                       lambda s, share: spectrum_summary(s, 1, share)[1])
    assert "lora_edu.rank.effective_rank" in message(ch6.directions_for,
                                                     lambda s, share: rank_module.effective_rank(np.diag(s), share))
    assert "lora_edu.sweep.cheapest_rank" in message(ch6.cheapest_rank, lambda rows, tol: sweep_module.cheapest_rank(
        rows, tol))
    assert "lora_edu.gpt.GPT.generate" in message(ch5.greedy, lambda m, p, n: m.generate(p, n, temperature=0))
    assert status(ch6.directions_for, _directions_for) == "correct"
    assert (rank_module.spectrum_summary, rank_module.effective_rank, sweep_module.cheapest_rank,
            GPT.generate) == originals
    assert spectrum_summary([3.0, 1.0], 1, 0.9) == rank_module.spectrum_summary([3.0, 1.0], 1, 0.9)


def test_answers_that_lie_or_meddle_are_judged_by_what_they_are():
    class Liar(int):                        # claims to equal everything
        __eq__ = lambda self, other: True
        __ne__ = lambda self, other: False
        __hash__ = int.__hash__
    assert status(ch1.window, lambda M, r: Liar(0)) == "wrong"

    class Agreeable(str):
        __eq__ = lambda self, other: True
        __ne__ = lambda self, other: False
        __hash__ = str.__hash__
    assert status(ch5.greedy, lambda m, p, n: Agreeable("?")) == "wrong"
    assert status(ch5.next_byte, lambda m, t: Agreeable("?")) == "wrong"

    def erases(X, W, b, M, N, scale):       # zeroes the check's data, then matches it
        W[:], b[:], N[:] = 0, 0, 0
        return np.zeros((X.shape[0], W.shape[1]))
    assert status(ch4.lora_forward, erases) == "wrong"
    assert status(ch4.merge_weight, lambda W, M, N, s: (M.__setitem__(slice(None), 0), W)[1]) == "wrong"

    def in_place(X, W, b, M, N, scale):     # careless, but right
        M *= scale
        return X @ W + X @ M @ N + b
    assert status(ch4.lora_forward, in_place) == "correct"
    for shapes in [((768.9, 3072.2), (3072.5, 768.7)), (("768", "3072"), ("3072", "768"))]:
        assert "pair of whole numbers" in message(ch3.layer_shapes, shapes)


def test_the_easy_ways_round_a_forbidden_function_are_closed():
    import functools

    import lora_edu.exercises.ch6 as module
    assert "effective_rank" in message(ch6.directions_for, functools.partial(effective_rank))
    assert "energy_share" in message(ch6.directions_for, lambda s, share, e=energy_share: e(np.diag(s), 1))
    assert "spectrum_summary" in message(ch6.directions_for, lambda s, share: module.spectrum_summary(s, 1, share)[1])
    assert module.effective_rank is effective_rank and module.energy_share is energy_share


def test_errors_that_cannot_even_be_printed_are_still_reported():
    class Mute(Exception):
        def __str__(self):
            raise RuntimeError("no")

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no")

    def raises(M, r):
        raise Mute

    assert "cannot be printed" in message(ch1.window, raises)
    assert "Unprintable that cannot be printed" in message(ch1.window, lambda M, r: Unprintable())
    assert "cannot be printed" in ch1.window.verdict(lambda M, r: sys.exit(Unprintable())).message
    assert status(ch1.window, lambda M, r: 10 ** 5000) == "wrong"
