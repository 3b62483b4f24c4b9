"""Parity in float64 with torch.nn.GRU / LSTM / RNN: outputs, final state, and the gradients of the input, the
initial state and every parameter; with and without lengths; uni- and bidirectional; 1 to 3 layers."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from gruasr.models import GRU, LSTM, RNN

from .helpers import flat, make_batch, rel_err, run_torch

TOL = 1e-9  # relative, float64
UNITS = {"gru": (GRU, nn.GRU), "lstm": (LSTM, nn.LSTM), "rnn": (RNN, nn.RNN)}
CASES = list(itertools.product(UNITS, [1, 2, 3], [False, True], [False, True]))


def _parity(name, layers, bidirectional, with_lengths, device, backend="reference", dtype=torch.float64, tol=TOL):
    ours_cls, torch_cls = UNITS[name]
    ours = ours_cls(6, 5, num_layers=layers, bidirectional=bidirectional, backend=backend).to(device, dtype)
    ref = torch_cls(6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True).to(device, dtype)
    ref.load_state_dict(ours.state_dict())  # the same names and shapes, so strict loading works

    x, lengths = make_batch(4, 7, 6, device, dtype, lengths=with_lengths)
    x_ref = x.detach().clone().requires_grad_()
    shape = (layers * (2 if bidirectional else 1), 4, 5)
    parts = 2 if name == "lstm" else 1
    init = [torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(parts)]
    init_ref = [s.detach().clone().requires_grad_() for s in init]
    as_state = (lambda p: p[0]) if parts == 1 else tuple

    y, out_lengths, state = ours(x, lengths, as_state(init))
    y_ref, state_ref = run_torch(ref, x_ref, lengths, as_state(init_ref))
    assert out_lengths is lengths or torch.equal(out_lengths, lengths)
    assert rel_err(y, y_ref) < tol
    for s, s_ref in zip(flat(state), flat(state_ref), strict=True):
        assert rel_err(s, s_ref) < tol

    # One random projection of every output, so every gradient path is exercised.
    w_y = torch.randn_like(y)
    w_s = [torch.randn_like(s) for s in flat(state)]
    loss = (y * w_y).sum() + sum((s * w).sum() for s, w in zip(flat(state), w_s, strict=True))
    loss_ref = (y_ref * w_y).sum() + sum((s * w).sum() for s, w in zip(flat(state_ref), w_s, strict=True))
    loss.backward()
    loss_ref.backward()
    assert rel_err(x.grad, x_ref.grad) < tol
    for s, s_ref in zip(init, init_ref, strict=True):
        assert rel_err(s.grad, s_ref.grad) < tol
    ref_params = dict(ref.named_parameters())
    for pname, p in ours.named_parameters():
        assert rel_err(p.grad, ref_params[pname].grad) < tol, pname


@pytest.mark.parametrize(("name", "layers", "bidirectional", "with_lengths"), CASES)
def test_reference_matches_torch(name, layers, bidirectional, with_lengths, device):
    _parity(name, layers, bidirectional, with_lengths, device)


@pytest.mark.parametrize(
    ("name", "bidirectional", "with_lengths"), list(itertools.product(UNITS, [False, True], [False, True]))
)
def test_fused_backend_matches_torch(name, bidirectional, with_lengths, device):
    _parity(name, 2, bidirectional, with_lengths, device, backend="fused")


@pytest.mark.cuda
@pytest.mark.parametrize(
    ("name", "bidirectional", "with_lengths"), list(itertools.product(UNITS, [False, True], [False, True]))
)
@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_parity_on_cuda(name, bidirectional, with_lengths, backend):
    """The same parity on a GPU: float64 (cuDNN runs doubles too) and both backends."""
    _parity(name, 2, bidirectional, with_lengths, torch.device("cuda"), backend=backend)


@pytest.mark.cuda
@pytest.mark.parametrize("bidirectional", [False, True])
def test_reference_matches_cudnn_float32(bidirectional):
    """float32 on the GPU: the reference recursion against cuDNN's kernels, to float32 accuracy."""
    _parity("gru", 3, bidirectional, True, torch.device("cuda"), dtype=torch.float32, tol=1e-4)


def test_state_dict_moves_both_ways():
    ref = nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    ours = GRU(4, 3, num_layers=2, bidirectional=True)
    ours.load_state_dict(ref.state_dict())  # strict: same names and shapes
    back = nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    back.load_state_dict(ours.state_dict())
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), back.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    assert list(dict(ours.named_parameters())) == list(dict(ref.named_parameters()))


def test_no_bias_matches_torch():
    ours = GRU(3, 4, num_layers=2, bias=False).double()
    ref = nn.GRU(3, 4, num_layers=2, bias=False, batch_first=True).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert rel_err(ours(x)[0], ref(x)[0]) < TOL


def test_initialisation_matches_torch_range():
    ours = GRU(10, 64)
    bound = 64**-0.5
    for p in ours.parameters():
        assert p.abs().max() <= bound
        assert p.abs().max() > 0.9 * bound  # uniform over the whole range, not a narrower one
