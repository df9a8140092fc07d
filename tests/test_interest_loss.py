"""The training loss's fused softmax piece (MaskedLogSumExp) against plain autograd."""

from __future__ import annotations

import pytest
import torch

from recsys_db.interest.loss import MaskedLogSumExp, take


def reference(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
              exclude: torch.Tensor | None,
              hits: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    logits = torch.addmm(bias, u, weight.T)
    mask = torch.zeros_like(logits, dtype=torch.bool)
    if exclude is not None:
        mask.scatter_(1, exclude, True)
    if hits is not None:
        mask[hits] = True
    return logits.masked_fill(mask, float("-inf")).logsumexp(-1)


def leaves(rows: int, classes: int, dim: int, dtype: torch.dtype, seed: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()
                 for shape in ((rows, dim), (classes, dim), (classes,)))  # type: ignore[return-value]


def test_values_and_gradients_equal_autograd_over_the_masked_logits() -> None:
    u, w, b = leaves(37, 50, 8, torch.float64, 0)
    exclude = torch.randint(0, 50, (37, 6), generator=torch.Generator().manual_seed(1))
    hits = (torch.tensor([0, 3, 3, 36]), torch.tensor([5, 7, 49, 0]))
    weights = torch.randn(37, dtype=torch.float64)  # a non-uniform upstream gradient
    for ex, hit in ((exclude, None), (None, hits), (exclude, hits), (None, None)):
        got = MaskedLogSumExp.apply(u, w, b, ex, hit)
        want = reference(u, w, b, ex, hit)
        torch.testing.assert_close(got, want)
        grads = torch.autograd.grad((got * weights).sum(), (u, w, b))
        want_grads = torch.autograd.grad((want * weights).sum(), (u, w, b))
        for a, e in zip(grads, want_grads, strict=True):
            torch.testing.assert_close(a, e)
    # backward reuses the saved block in place: a second backward of one forward is refused
    out = MaskedLogSumExp.apply(u, w, b, exclude, None)
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        out.sum().backward()


def test_a_fully_masked_row_is_minus_infinity_and_gets_no_gradient() -> None:
    u, w, b = leaves(3, 4, 5, torch.float32, 2)
    exclude = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0], [1, 1, 1, 1]])
    out = MaskedLogSumExp.apply(u, w, b, exclude, None)
    assert out[0] == float("-inf") and torch.isfinite(out[1:]).all()
    gu, gw, gb = torch.autograd.grad(out, (u, w, b), grad_outputs=torch.ones(3))
    assert (gu[0] == 0).all() and torch.isfinite(gu).all()
    assert torch.isfinite(gw).all() and torch.isfinite(gb).all()


def test_take_is_advanced_indexing_with_its_gradient() -> None:
    x = torch.randn(10, 3, requires_grad=True)
    index = torch.tensor([[1, 1, 4], [9, 0, 1]])
    got = take(x, index)
    assert got.shape == (2, 3, 3)
    torch.testing.assert_close(got, x[index])
    (grad,) = torch.autograd.grad((got ** 2).sum(), x)
    (want,) = torch.autograd.grad((x[index] ** 2).sum(), x)
    torch.testing.assert_close(grad, want)
