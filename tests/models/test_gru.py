"""The GRU's own pieces: the cell, the hand-written backward (gradcheck), and clear errors at the boundary."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gruasr import ConfigError, ShapeError
from gruasr.models import GRU, GRUCell, gru_cell
from gruasr.models.gru import gru_sequence

from .helpers import rel_err


def test_cell_matches_torch_cell():
    ours = GRUCell(5, 4).double()
    ref = nn.GRUCell(5, 4).double()
    ref.load_state_dict(ours.state_dict())
    x, h = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    assert rel_err(ours(x, h), ref(x, h)) < 1e-12
    assert rel_err(ours(x), ref(x)) < 1e-12


@pytest.mark.parametrize("reverse", [False, True])
def test_cell_over_sequence_equals_layer(reverse):
    gru = GRU(4, 6, num_layers=2, bidirectional=True).double()
    x = torch.randn(3, 9, 4, dtype=torch.float64)
    y, _, state = gru(x)
    first = GRUCell.from_layer(gru, layer=0, reverse=reverse)
    second = GRUCell.from_layer(gru, layer=1, reverse=reverse)
    # layer 0 both directions by cell, to build layer 1's input
    fwd, bwd = GRUCell.from_layer(gru, 0, False), GRUCell.from_layer(gru, 0, True)
    h_f, h_b, outs_f, outs_b = None, None, [], []
    for t in range(9):
        h_f = fwd(x[:, t], h_f)
        h_b = bwd(x[:, 8 - t], h_b)
        outs_f.append(h_f)
        outs_b.insert(0, h_b)
    layer0 = torch.cat([torch.stack(outs_f, 1), torch.stack(outs_b, 1)], -1)
    h, outs = None, []
    order = range(8, -1, -1) if reverse else range(9)
    for t in order:
        h = second(layer0[:, t], h)
        outs.append(h)
    if reverse:
        outs.reverse()
    got = torch.stack(outs, 1)
    half = slice(6, 12) if reverse else slice(0, 6)
    assert rel_err(got, y[:, :, half]) < 1e-12
    assert rel_err(h, state[3 if reverse else 2]) < 1e-12
    assert first.weight_ih.shape == (18, 4)


def test_fast_recursion_equals_the_equations():
    """GRUSequence (the loop arranged for speed) computes exactly what gru_cell's equations say."""
    w_ih, w_hh = torch.randn(15, 3, dtype=torch.float64), torch.randn(15, 5, dtype=torch.float64)
    b_ih, b_hh = torch.randn(15, dtype=torch.float64), torch.randn(15, dtype=torch.float64)
    x = torch.randn(8, 2, 3, dtype=torch.float64)  # (T, B, I)
    h = torch.randn(2, 5, dtype=torch.float64)
    hs, last = gru_sequence(x @ w_ih.t() + b_ih, h, w_hh, b_hh)
    for t in range(8):
        h = gru_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        assert rel_err(hs[t], h) < 1e-12
    assert torch.equal(last, hs[-1])


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_backward_passes_gradcheck(masked, bias):
    gi = torch.randn(5, 3, 12, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    b_hh = torch.randn(12, dtype=torch.float64, requires_grad=True) if bias else None
    mask = torch.arange(5)[:, None] < torch.tensor([5, 2, 4])[None, :] if masked else None
    assert torch.autograd.gradcheck(lambda *a: gru_sequence(*a, mask=mask), (gi, h0, w_hh, b_hh))


def test_module_gradcheck_bidirectional_with_lengths():
    """gradcheck through the whole module: 2 bidirectional layers, ragged lengths, output and state."""
    gru = GRU(3, 2, num_layers=2, bidirectional=True).double()
    x = torch.randn(3, 4, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])
    names = [n for n, _ in gru.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in gru.parameters())

    def fn(x, *ps):
        y, _, state = functional_call(gru, dict(zip(names, ps, strict=True)), (x, lengths))
        return y, state

    assert torch.autograd.gradcheck(fn, (x, *params))


def test_padding_values_do_not_leak():
    gru = GRU(3, 4, bidirectional=True)
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 3])
    y1, _, s1 = gru(x, lengths)
    x2 = x.clone()
    x2[1, 3:] = 1e3
    y2, _, s2 = gru(x2, lengths)
    assert torch.equal(y1, y2) and torch.equal(s1, s2)
    assert torch.all(y1[1, 3:] == 0)


def test_dropout_only_between_layers_and_only_in_training():
    gru = GRU(3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 3)
    gru.eval()
    assert torch.equal(gru(x)[0], gru(x)[0])
    gru.train()
    assert not torch.equal(gru(x)[0], gru(x)[0])
    single = GRU(3, 8, num_layers=1, dropout=0.5).train()
    assert torch.equal(single(x)[0], single(x)[0])  # nothing to drop between layers


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g(torch.randn(2, 5)), "shape"),
        (lambda g: g(torch.randn(2, 5, 4)), "input_size 3"),
        (lambda g: g(torch.randn(2, 5, 3, dtype=torch.float64)), "dtype"),
        (lambda g: g(torch.randint(0, 3, (2, 5, 3))), "dtype"),
        (lambda g: g(torch.randn(2, 0, 3)), "empty"),
        (lambda g: g(torch.randn(2, 5, 3), torch.tensor([5, 6])), r"\[1, T=5\]"),
        (lambda g: g(torch.randn(2, 5, 3), torch.tensor([0, 5])), r"\[1, T=5\]"),
        (lambda g: g(torch.randn(2, 5, 3), torch.tensor([5.0, 2.0])), "integer"),
        (lambda g: g(torch.randn(2, 5, 3), torch.tensor([5, 2, 1])), r"shape \(2,\)"),
        (lambda g: g(torch.randn(2, 5, 3), None, torch.zeros(1, 3, 4)), "state must have shape"),
        (lambda g: g(torch.randn(2, 5, 3), None, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))), "a tensor"),
        (lambda g: GRUCell(3, 4)(torch.randn(2, 4)), "GRUCell expects x"),
        (lambda g: GRUCell(3, 4)(torch.randn(2, 3), torch.randn(2, 5)), "GRUCell expects h"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ShapeError, match=message):
        call(GRU(3, 4))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hidden_size=0),
        dict(num_layers=0),
        dict(dropout=1.0),
        dict(backend="cudnn"),
        dict(hidden_size=2.5),
    ],
)
def test_bad_construction(kwargs):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(ConfigError):
        GRU(**args)


def test_lengths_accept_lists_and_int32():
    gru = GRU(3, 4)
    x = torch.randn(2, 5, 3)
    y1 = gru(x, [5, 2])[0]
    y2 = gru(x, torch.tensor([5, 2], dtype=torch.int32))[0]
    assert torch.equal(y1, y2)
