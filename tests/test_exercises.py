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
from lora_edu.rank import rank_by_elimination


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


ALL = [ch1.rank_two, ch1.predict_product_rank, ch1.my_rank, ch1.tolerance, ch1.zero_row_sums,
       ch2.storage_count, ch2.factor_it, ch2.smallest_rank, ch2.compress, ch2.break_even,
       ch3.layer_shapes, ch3.param_count, ch3.mlp_forward, ch3.to_torch,
       ch4.adapter_size, ch4.lora_forward, ch4.merge_weight, ch4.budget_rank,
       ch5.adapter_params, ch5.next_byte, ch5.lora_update, ch5.greedy,
       ch6.directions_for, ch6.cheapest_rank, ch6.chance_overlap]


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.number)
def test_placeholder_is_not_attempted_and_correct_message_does_not_depend_on_answer(ex, capsys):
    assert status(ex, ...) == "not attempted"
    ex.check(...)
    assert capsys.readouterr().out.startswith(f"… Exercise {ex.number} not attempted yet")
    assert status(ex, not_implemented) in ("not attempted", "wrong")   # functions: not attempted


@pytest.mark.parametrize("ex", [ch1.my_rank, ch2.compress, ch6.directions_for, ch6.cheapest_rank,
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


_solved = {"Fraction": Fraction}
exec(ch1.my_rank._solution, _solved)          # the worked solution that .solution() prints is itself correct
_my_rank = _solved["my_rank"]


def test_my_rank():
    good = _my_rank

    def no_swap(M):  # a classic bug: assumes the pivot is on the diagonal
        R = [[Fraction(x) for x in row] for row in M]
        rank = 0
        for col in range(len(R[0])):
            if rank < len(R) and R[rank][col] != 0:
                for i in range(rank + 1, len(R)):
                    f = R[i][col] / R[rank][col]
                    R[i] = [a - f * b for a, b in zip(R[i], R[rank])]
                rank += 1
        return rank

    def advance_always(M):  # moves to the next row even when a column has no pivot
        R = [[Fraction(x) for x in row] for row in M]
        m, n = len(R), len(R[0])
        rank = row = 0
        for col in range(n):
            if row >= m:
                break
            p = next((i for i in range(row, m) if R[i][col] != 0), None)
            if p is not None:
                R[row], R[p] = R[p], R[row]
                for i in range(row + 1, m):
                    f = R[i][col] / R[row][col]
                    R[i] = [a - f * b for a, b in zip(R[i], R[row])]
                rank += 1
            row += 1
        return rank

    assert status(ch1.my_rank, good) == "correct"
    assert "my_rank([[0, 1], [1, 0]]) returned 1; expected 2" in message(ch1.my_rank, no_swap)
    assert "my_rank([[1, 2, 0], [2, 4, 1]]) returned 1; expected 2." in message(ch1.my_rank, advance_always)
    floats = message(ch1.my_rank, lambda M: int(np.linalg.matrix_rank(np.array(M, dtype=float))))
    assert floats.endswith("Floating-point arithmetic cannot see this one: use Fractions.")
    assert "returned None (NoneType); a rank is a whole number" in message(ch1.my_rank, lambda M: None)
    assert "returned 2.0 (float)" in message(ch1.my_rank, lambda M: float(good(M)))
    delegated = "calls lora_edu.rank.rank_by_elimination, which does this exercise for you"
    assert delegated in message(ch1.my_rank, lambda M: rank_by_elimination(M))


def test_tolerance():
    assert status(ch1.tolerance, 1e-6) == "correct"
    assert status(ch1.tolerance, 1) == "correct"
    assert "numerical rank of X is 6: noise still counts" in message(ch1.tolerance, 1e-12)
    assert "numerical rank of X is 0" in message(ch1.tolerance, 100.0)
    assert "numerical rank of X is 1" in message(ch1.tolerance, 4.0)
    assert "finite number ≥ 0" in message(ch1.tolerance, -1.0)
    assert "should be a number" in message(ch1.tolerance, "1e-6")
    assert status(ch1.tolerance, Fraction(1, 10**6)) == "correct" and status(ch1.tolerance, np.array(1e-6)) == "correct"
    assert ch1.tolerance.data["X"].shape == (6, 6)


def test_zero_row_sums():
    assert status(ch1.zero_row_sums, 3) == "correct"
    assert "what do the four columns add up to" in message(ch1.zero_row_sums, 4)
    assert "min(10, 4) = 4" in message(ch1.zero_row_sums, 10)
    assert "not the largest" in message(ch1.zero_row_sums, 2)
    assert "cannot be negative" in message(ch1.zero_row_sums, -1)


# ---- chapter 2 ---------------------------------------------------------------------------------------------

def test_storage_count():
    assert status(ch2.storage_count, 61_440) == "correct"
    assert "full matrix" in message(ch2.storage_count, 768 * 3072)
    assert "count the entries of M and of N separately" in message(ch2.storage_count, 16 * 768 * 3072)
    assert "counts only M" in message(ch2.storage_count, 16 * 768)
    assert "counts only N" in message(ch2.storage_count, 16 * 3072)
    assert message(ch2.storage_count, 5).endswith("5 is not it: M is m × r and N is r × n; add up their entries.")


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


def test_smallest_rank():
    f = ch2._photo_factorizer()
    r = int(np.argmax(f.errors() < 0.05)) + 1
    assert status(ch2.smallest_rank, r) == "correct"
    assert "still not below 5 %" in message(ch2.smallest_rank, r - 1)
    assert "but so does a smaller rank" in message(ch2.smallest_rank, r + 1)
    assert str(r) not in message(ch2.smallest_rank, 512)                # never hands over the answer
    assert "between 1 and 512" in message(ch2.smallest_rank, 0)


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


def test_param_count():
    assert status(ch3.param_count, 203_530) == "correct"
    assert "counts only the weights" in message(ch3.param_count, 784 * 256 + 256 * 10)
    assert "first layer only" in message(ch3.param_count, 784 * 256 + 256)
    assert "is not it" in message(ch3.param_count, 1)


def test_mlp_forward():
    good = lambda X, W1, b1, W2, b2: np.tanh(X @ W1 + b1) @ W2 + b2
    assert status(ch3.mlp_forward, good) == "correct"
    assert status(ch3.mlp_forward, not_implemented) == "not attempted"
    assert "without the tanh" in message(ch3.mlp_forward, lambda X, W1, b1, W2, b2: (X @ W1 + b1) @ W2 + b2)
    transposed = message(ch3.mlp_forward, lambda X, W1, b1, W2, b2: np.tanh(X @ W1.T + b1) @ W2 + b2)
    assert "mlp_forward(X (4, 3), W1 (3, 6)" in transposed and "raised ValueError" in transposed
    assert "returned shape (4, 6)" in message(ch3.mlp_forward, lambda X, W1, b1, W2, b2: np.tanh(X @ W1 + b1))
    assert "the output is None: does the function `return` it?" in message(ch3.mlp_forward, lambda *args: None)


def test_to_torch():
    import torch
    import torch.nn as nn
    W, b = ch3.to_torch.data["W"], ch3.to_torch.data["b"]
    layer = nn.Linear(3, 6)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W.T))
        layer.bias.copy_(torch.tensor(b))
    assert status(ch3.to_torch, layer) == "correct"
    assert "nn.Linear(6, 3)" in message(ch3.to_torch, nn.Linear(6, 3))
    assert "What must weight be" in message(ch3.to_torch, nn.Linear(3, 6))
    wrong_way = nn.Linear(3, 6)
    wrong_way.weight = nn.Parameter(torch.tensor(W, dtype=torch.float32))   # (3, 6): the common slip
    assert "weight has shape (3, 6)" in message(ch3.to_torch, wrong_way)
    no_bias = nn.Linear(3, 6)
    with torch.no_grad():
        no_bias.weight.copy_(torch.tensor(W.T))
    assert "the bias differs" in message(ch3.to_torch, no_bias)
    assert "answer with an nn.Linear" in message(ch3.to_torch, W)
    assert "no bias" in message(ch3.to_torch, nn.Linear(3, 6, bias=False))


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
    for ex, answer in [(ch2.storage_count, 61_440), (ch2.break_even, 187), (ch3.param_count, 203_530),
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
    def forever(M):
        while True:
            pass

    def careless(M):                      # swallows every error, but not the clock
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass

    for fn in (forever, careless):
        started = time.monotonic()
        v = ch1.my_rank.verdict(fn, time_limit=0.5)
        assert v.status == "error" and "did not finish within 0.5 s" in v.message, v
        assert time.monotonic() - started < 5
    assert ch1.my_rank.verdict(_my_rank, time_limit=5).ok          # the clock is off again afterwards
    time.sleep(0.7)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_answer_that_never_finishes_being_checked_is_stopped():
    import torch.nn as nn

    class Endless(nn.Linear):              # not a function: the check calls it itself
        def forward(self, x):
            while True:
                pass
    v = ch3.to_torch.verdict(Endless(3, 6), time_limit=0.5)
    assert v.status == "error" and "did not finish within 0.5 s" in v.message


def test_sys_exit_and_other_escapes_become_a_cross():
    def leave(M):
        sys.exit(3)
    v = ch1.my_rank.verdict(leave)
    assert v.status == "error" and "called sys.exit(3)" in v.message and str(v).startswith("✗")
    assert "called sys.exit()" in ch1.my_rank.verdict(lambda M: sys.exit()).message

    class Leaves:
        def __array__(self, *args, **kwargs):
            raise SystemExit("bye")
    assert ch1.rank_two.verdict(Leaves()).status in ("wrong", "error")
    with pytest.raises(KeyboardInterrupt):                      # an interrupt still stops the check
        ch1.my_rank.verdict(lambda M: (_ for _ in ()).throw(KeyboardInterrupt))


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
    originals = (rank_module.spectrum_summary, rank_module.rank_by_elimination, sweep_module.cheapest_rank,
                 GPT.generate)
    assert "lora_edu.rank.spectrum_summary" in message(ch6.directions_for,
                                                       lambda s, share: spectrum_summary(s, 1, share)[1])
    assert "lora_edu.rank.effective_rank" in message(ch6.directions_for,
                                                     lambda s, share: rank_module.effective_rank(np.diag(s), share))
    assert "lora_edu.sweep.cheapest_rank" in message(ch6.cheapest_rank, lambda rows, tol: sweep_module.cheapest_rank(
        rows, tol))
    assert "lora_edu.gpt.GPT.generate" in message(ch5.greedy, lambda m, p, n: m.generate(p, n, temperature=0))
    assert status(ch6.directions_for, _directions_for) == "correct"
    assert (rank_module.spectrum_summary, rank_module.rank_by_elimination, sweep_module.cheapest_rank,
            GPT.generate) == originals
    assert spectrum_summary([3.0, 1.0], 1, 0.9) == rank_module.spectrum_summary([3.0, 1.0], 1, 0.9)


def test_answers_that_lie_or_meddle_are_judged_by_what_they_are():
    class Liar(int):                        # claims to equal everything
        __eq__ = lambda self, other: True
        __ne__ = lambda self, other: False
        __hash__ = int.__hash__
    assert status(ch1.my_rank, lambda M: Liar(0)) == "wrong"

    class Agreeable(str):
        __eq__ = lambda self, other: True
        __ne__ = lambda self, other: False
        __hash__ = str.__hash__
    assert status(ch5.greedy, lambda m, p, n: Agreeable("?")) == "wrong"
    assert status(ch5.next_byte, lambda m, t: Agreeable("?")) == "wrong"

    def erases(X, W1, b1, W2, b2):           # zeroes the check's data, then matches it
        W2[:], b2[:] = 0, 0
        return np.zeros((X.shape[0], W2.shape[1]))
    assert status(ch3.mlp_forward, erases) == "wrong"
    assert status(ch4.merge_weight, lambda W, M, N, s: (M.__setitem__(slice(None), 0), W)[1]) == "wrong"

    def in_place(X, W, b, M, N, scale):     # careless, but right
        M *= scale
        return X @ W + X @ M @ N + b
    assert status(ch4.lora_forward, in_place) == "correct"
    for shapes in [((768.9, 3072.2), (3072.5, 768.7)), (("768", "3072"), ("3072", "768"))]:
        assert "pair of whole numbers" in message(ch3.layer_shapes, shapes)


def test_the_easy_ways_round_a_forbidden_function_are_closed():
    import functools

    import lora_edu.exercises.ch1 as module
    assert "rank_by_elimination" in message(ch1.my_rank, functools.partial(rank_by_elimination))
    assert "rank_by_elimination" in message(ch1.my_rank, lambda M, r=rank_by_elimination: r(M))
    assert "rank_by_elimination" in message(ch1.my_rank, lambda M: module.rank_by_elimination(M))
    assert module.rank_by_elimination is rank_by_elimination


def test_errors_that_cannot_even_be_printed_are_still_reported():
    class Mute(Exception):
        def __str__(self):
            raise RuntimeError("no")

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no")

    def raises(M):
        raise Mute

    assert "cannot be printed" in message(ch1.my_rank, raises)
    assert "Unprintable that cannot be printed" in message(ch1.my_rank, lambda M: Unprintable())
    assert "cannot be printed" in ch1.my_rank.verdict(lambda M: sys.exit(Unprintable())).message
    assert status(ch1.my_rank, lambda M: 10 ** 5000) == "wrong"
