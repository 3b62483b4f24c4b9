"""Every unit behind the one interface: lengths, padding, streaming step by step, and each unit's own maths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gruasr import ConfigError, ShapeError
from gruasr.models import LiGRU, MinGRU, available, recurrent
from gruasr.models.mingru import g, log_g

from .helpers import flat, rel_err

# Every unit and backend that has its own arithmetic (the fused ones are covered by the parity tests).
VARIANTS = [
    ("gru", {}),
    ("lstm", {}),
    ("rnn", {}),
    ("ligru", {"normalization": "batchnorm"}),
    ("ligru", {"normalization": "layernorm"}),
    ("ligru", {"normalization": "none"}),
    ("mingru", {"backend": "scan"}),
    ("mingru", {"backend": "sequential"}),
]
IDS = [f"{n}-{'-'.join(map(str, kw.values())) or 'default'}" for n, kw in VARIANTS]


def build(name, kwargs, **more):
    unit = recurrent(name, input_size=4, hidden_size=5, **kwargs, **more).double()
    return unit.eval()  # batch norm on running statistics, so each sequence stands alone


def test_registry_lists_every_unit_in_order():
    assert available() == ["gru", "lstm", "rnn", "ligru", "mingru"]
    with pytest.raises(ConfigError, match="unknown recurrent unit"):
        recurrent("transformer", input_size=2, hidden_size=2)


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_sequence_alone(name, kwargs, bidirectional):
    unit = build(name, kwargs, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(3, 9, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 6])
    y, _, state = unit(x, lengths)
    assert y.shape == (3, 9, 5 * (2 if bidirectional else 1))
    for b in range(3):
        n = int(lengths[b])
        y_b, _, s_b = unit(x[b : b + 1, :n])
        assert rel_err(y[b, :n], y_b[0]) < 1e-12
        assert torch.all(y[b, n:] == 0)
        for s, sb in zip(flat(state), flat(s_b), strict=True):
            assert rel_err(s[:, b], sb[:, 0]) < 1e-12


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_padding_does_not_leak_in_training(name, kwargs):
    unit = build(name, kwargs, bidirectional=True).train()  # batch norm statistics over valid frames only
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5])
    y1, _, s1 = unit(x, lengths)
    x[1, 3:] = 50.0
    x[2, 5:] = -50.0
    y2, _, s2 = unit(x, lengths)
    assert rel_err(y1, y2) < 1e-12
    for a, b in zip(flat(s1), flat(s2), strict=True):
        assert rel_err(a, b) < 1e-12


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_streaming_step_by_step_and_in_chunks_equals_whole(name, kwargs):
    unit = build(name, kwargs, num_layers=3)
    x = torch.randn(2, 40, 4, dtype=torch.float64)
    y, _, state = unit(x)
    s, steps = None, []
    for t in range(40):
        out, s = unit.step(x[:, t], s)
        steps.append(out)
    assert rel_err(torch.stack(steps, 1), y) < 1e-12
    s, chunks = None, []
    for lo, hi in [(0, 1), (1, 11), (11, 12), (12, 40)]:
        out, _, s = unit(x[:, lo:hi], None, s)
        chunks.append(out)
    assert rel_err(torch.cat(chunks, 1), y) < 1e-12
    for a, b in zip(flat(s), flat(state), strict=True):
        assert rel_err(a, b) < 1e-12


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mingru_scan_equals_sequential_with_gradients(bidirectional):
    scan = MinGRU(4, 6, num_layers=2, bidirectional=bidirectional, backend="scan").double()
    seq = MinGRU(4, 6, num_layers=2, bidirectional=bidirectional, backend="sequential").double()
    seq.load_state_dict(scan.state_dict())
    x = torch.randn(3, 100, 4, dtype=torch.float64, requires_grad=True)  # 100 steps: several scan chunks
    x2 = x.detach().clone().requires_grad_()
    lengths = torch.tensor([100, 37, 64])
    h0 = torch.rand(4 if bidirectional else 2, 3, 6, dtype=torch.float64)
    y1, _, s1 = scan(x, lengths, h0)
    y2, _, s2 = seq(x2, lengths, h0)
    assert rel_err(y1, y2) < 1e-10 and rel_err(s1, s2) < 1e-10
    w = torch.randn_like(y1)
    ((y1 * w).sum() + s1.sum()).backward()
    ((y2 * w).sum() + s2.sum()).backward()
    assert rel_err(x.grad, x2.grad) < 1e-10
    grads = dict(seq.named_parameters())
    for n, p in scan.named_parameters():
        assert rel_err(p.grad, grads[n].grad) < 1e-10, n
        assert torch.isfinite(p.grad).all()


def test_mingru_scan_stays_accurate_in_float32_on_long_inputs():
    """A minute of 10 ms frames: the chunked log-space scan keeps float32 close to the float64 recursion."""
    scan = MinGRU(8, 16, backend="scan")
    seq = MinGRU(8, 16, backend="sequential").double()
    seq.load_state_dict(scan.state_dict())
    x = torch.randn(2, 6000, 8)
    y32 = scan(x)[0]
    y64 = seq(x.double())[0]
    assert rel_err(y32.double(), y64) < 1e-4


def test_mingru_activation_is_positive_and_continuous():
    v = torch.linspace(-30, 30, 10001, dtype=torch.float64)
    assert torch.all(g(v) > 0)
    assert rel_err(torch.exp(log_g(v)), g(v)) < 1e-12
    assert abs(float(g(torch.tensor(-1e-12))) - float(g(torch.tensor(0.0)))) < 1e-9


def test_mingru_gradcheck():
    unit = MinGRU(3, 2, bidirectional=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: unit(x, torch.tensor([5, 3]))[0], (x,))


def _ligru_by_hand(unit: LiGRU, x, norm):
    """The paper's equations, one step at a time, for a one-layer unidirectional Li-GRU."""
    w, u = unit.weight_ih_l0, unit.weight_hh_l0
    h = x.new_zeros(x.shape[0], unit.hidden_size)
    outs = []
    for t in range(x.shape[1]):
        a = norm(x[:, t] @ w.t())
        a_z, a_h = a.chunk(2, -1)
        u_z, u_h = u.chunk(2, 0)
        z = torch.sigmoid(a_z + h @ u_z.t())
        c = torch.relu(a_h + h @ u_h.t())
        h = z * h + (1 - z) * c
        outs.append(h)
    return torch.stack(outs, 1)


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_ligru_follows_the_paper(normalization):
    unit = LiGRU(4, 5, normalization=normalization).double().eval()
    norm = unit.norms["l0"]
    with torch.no_grad():  # non-trivial statistics and affine parameters
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        if normalization == "batchnorm":
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 8, 4, dtype=torch.float64)
    assert rel_err(unit(x)[0], _ligru_by_hand(unit, x, norm)) < 1e-12


def test_ligru_batchnorm_training_uses_valid_frames_only():
    unit = LiGRU(4, 5).double().train()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2])
    unit(x, lengths)
    valid = torch.cat([x[0], x[1, :2]]) @ unit.weight_ih_l0.t()  # the 8 valid frames' projections
    expected = 0.05 * valid.mean(0)  # momentum 0.05 from a zero running mean
    assert rel_err(unit.norms["l0"].running_mean, expected) < 1e-12


def test_ligru_and_mingru_gradients_flow_to_every_parameter():
    for unit in (
        LiGRU(3, 4, num_layers=2, bidirectional=True),
        MinGRU(3, 4, num_layers=2, bidirectional=True),
    ):
        y = unit(torch.randn(2, 6, 3), torch.tensor([6, 4]))[0]
        y.square().sum().backward()
        for n, p in unit.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("name", ["ligru", "mingru"])
def test_units_without_fused_kernels_say_so(name):
    with pytest.raises(ConfigError, match="backend must be one of"):
        recurrent(name, input_size=3, hidden_size=4, backend="fused")


def test_bad_arguments():
    with pytest.raises(ConfigError, match="normalization"):
        LiGRU(3, 4, normalization="groupnorm")
    with pytest.raises(ConfigError, match="unidirectional"):
        recurrent("gru", input_size=3, hidden_size=4, bidirectional=True).step(torch.randn(1, 3))
    lstm = recurrent("lstm", input_size=3, hidden_size=4)
    with pytest.raises(ShapeError, match="tuple of 2"):
        lstm(torch.randn(1, 2, 3), None, torch.zeros(1, 1, 4))
    _, _, (h, c) = lstm(torch.randn(1, 2, 3))
    assert h.shape == c.shape == (1, 1, 4)


def test_softplus_identities_used_by_the_scan():
    k = torch.randn(100, dtype=torch.float64) * 10
    assert rel_err(torch.exp(-F.softplus(k)), 1 - torch.sigmoid(k)) < 1e-12
    assert rel_err(torch.exp(-F.softplus(-k)), torch.sigmoid(k)) < 1e-12


@pytest.mark.parametrize("name", available())
def test_inference_backend_gives_the_same_outputs(name):
    torch.manual_seed(0)
    layer = recurrent(name, input_size=6, hidden_size=5, num_layers=2, bidirectional=True).eval()
    x, lengths = torch.randn(3, 9, 6), torch.tensor([9, 4, 7])
    with torch.no_grad():
        before, _, _ = layer(x, lengths)
        layer.use_inference_backend()
        after, _, _ = layer(x, lengths)
    assert layer.backend == (type(layer).inference_backend or type(layer).backends[0])
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
