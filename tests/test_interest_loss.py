"""The training loss's pieces against plain torch: MaskedLogSumExp, take, band_latest; and
loading a version stored before the latest-occurrence bias and item_stay_content."""

from __future__ import annotations

import io
import json

import pytest
import torch

from recsys_db.interest.encoder import InterestModel, ModelShape, latest_occurrence
from recsys_db.interest.loss import MaskedLogSumExp, take
from recsys_db.interest.train import _band, band_latest
from recsys_db.interest.train_config import TrainConfig


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


def test_band_latest_flags_each_windows_latest_occurrence() -> None:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 5, (6, 7 + 12), generator=g)  # few ids: many repeats
    got = band_latest(ids, 12, 8)
    want = latest_occurrence(_band(ids, 12, 8)).float()
    assert got.shape == (6, 12, 8)
    torch.testing.assert_close(got, want)
    assert latest_occurrence(torch.tensor([[3, 1, 3, 0, 1]])).tolist() == [
        [False, False, True, True, True]]


def test_a_version_stored_before_2026_12_02_loads_as_the_same_model() -> None:
    from recsys_db.interest.features import Vocab
    from recsys_db.interest.store import model_blob, model_from_blob

    # before 2026-12-02: the item stay logits had the <query(h), key> term, no latest bias,
    # and the stored shape had no item_stay_content
    model = InterestModel(ModelShape(5, 3, dim=8, window=4, item_stay_content=True))
    items, categories = Vocab(torch.arange(10, 15).numpy()), Vocab(torch.arange(3).numpy())
    old = model.state_dict()
    for name in [n for n in old if n.endswith("latest_bias")]:
        del old[name]
    data = torch.load(io.BytesIO(model_blob(model, items, categories)))
    shape = json.loads(data["shape"])
    del shape["item_stay_content"]
    buffer = io.BytesIO()
    torch.save({**data, "state_dict": old, "shape": json.dumps(shape)}, buffer)
    loaded, _, _ = model_from_blob(buffer.getvalue())
    assert loaded.item_stay.content and loaded.shape.item_stay_content
    torch.testing.assert_close(loaded.item_stay.query.weight, model.item_stay.query.weight)
    assert (loaded.item_stay.latest_bias == 0).all()
    assert (loaded.category_stay.latest_bias == 0).all()
    torch.testing.assert_close(loaded.item_in.weight, model.item_in.weight)


@pytest.mark.parametrize("full_softmax_max_items", [100, 20_000])  # sampled, full softmax
def test_sparse_table_gradients_train_the_same_model_as_dense_ones(monkeypatch,
                                                                   full_softmax_max_items):
    from recsys_db import synth
    from recsys_db.interest import train as train_module
    from recsys_db.synth.log import event_log

    log = event_log(synth.make_spec(users=60, items=2_000, events=3_000, seed=4))
    config = TrainConfig(epochs=2, batch_size=8, dim=16, threads=1, negatives=64,
                         full_softmax_max_items=full_softmax_max_items)
    sparse = train_module.train(log, config).model.state_dict()
    monkeypatch.setattr(train_module, "SparseTableGrads", lambda model: None)  # dense path
    dense = train_module.train(log, config).model.state_dict()
    assert sparse.keys() == dense.keys()
    for name in sparse:
        assert torch.equal(sparse[name], dense[name]), name
