"""The rewritten pieces of the training step: each computes what the plain version computes."""

from __future__ import annotations

import resource
import sys

import pytest
import torch
import torch.nn.functional as F

from workbench.config import ModelConfig
from workbench.model import cpu_linear
from workbench.model.common import QuerySlots, TokenLayout, attention
from workbench.model import vocab_loss
from workbench.model.modernbert import ModernBertPretrainingModel, _GatedGelu, _GatedProjection, _RotaryQkv, _rotate, pair_rows, rotations
from workbench.train.allocator import keep_freed_memory_for_reuse

needs_onednn = pytest.mark.skipif(not cpu_linear.AVAILABLE, reason="the oneDNN path is for x86 CPUs with oneDNN")


@needs_onednn
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(37, 24), (3, 5, 24)])
def test_the_onednn_linear_gives_f_linear_values_and_gradients(bias, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    w = torch.randn(40, 24, requires_grad=True)
    b = torch.randn(40, requires_grad=True) if bias else None
    g = torch.randn(*shape[:-1], 40)
    with cpu_linear.onednn(True):
        ours = cpu_linear.linear(x, w, b)
    ours.backward(g)
    grads = [t.grad.clone() for t in (x, w, b) if t is not None]
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    plain = F.linear(x, w, b)
    plain.backward(g)
    assert ours.shape == plain.shape
    assert torch.allclose(ours, plain, atol=1e-5)
    for mine, reference in zip(grads, [t.grad for t in (x, w, b) if t is not None]):
        assert torch.allclose(mine, reference, atol=1e-4)
    flat = x.detach().reshape(-1, 24).requires_grad_()
    chosen = cpu_linear.in_use()
    with cpu_linear.onednn(True):
        assert cpu_linear.in_use()
        assert "OneDnn" in cpu_linear.linear(flat, w, b).grad_fn.name()
        with cpu_linear.onednn(False):
            assert not cpu_linear.in_use()
            assert "OneDnn" not in cpu_linear.linear(flat, w, b).grad_fn.name()     # F.linear's own node
    assert cpu_linear.in_use() == chosen


def test_the_matmul_path_follows_the_cpu_vendor_and_never_a_timing():
    assert not cpu_linear.onednn_preferred("GenuineIntel")      # MKL is Intel's own and fastest there
    assert cpu_linear.onednn_preferred("AuthenticAMD")
    assert not cpu_linear.onednn_preferred("")                  # unknown: torch's own path
    assert cpu_linear.in_use() == (cpu_linear.AVAILABLE and cpu_linear.onednn_preferred(cpu_linear.cpu_vendor()))


def test_query_slots_place_and_take_every_wanted_position_in_its_row():
    wanted = torch.tensor([0, 128, 256, 5, 7, 130, 300, 301, 302, 5])    # [CLS] of 3 rows, then masked, a repeat
    slots = QuerySlots.of(wanted, batch=3, length=128)
    assert slots.width == 8 and slots.rows.tolist() == [0, 1, 2, 0, 0, 1, 2, 2, 2, 0]
    assert len({(r, s) for r, s in zip(slots.rows.tolist(), slots.slots.tolist())}) == len(wanted)
    values = torch.arange(len(wanted), dtype=torch.float32)[:, None].repeat(1, 4)
    grid = slots.place(values)
    assert grid.shape == (3, 8, 4)
    assert torch.equal(slots.take(grid), values)
    assert int((grid.abs().sum(-1) > 0).sum()) == len(wanted) - 1         # value 0 sits in a slot too


def test_paired_rotary_leaves_every_attention_score_as_transformers_computes_it():
    """transformers rotates element i of a head with element i + hd/2; ours pairs them side by side and
    multiplies complex numbers. The scores q.k, all that attention reads, must be the same."""
    torch.manual_seed(0)
    B, T, nh, hd = 2, 9, 3, 8
    H = nh * hd
    q, k = torch.randn(B, T, nh, hd), torch.randn(B, T, nh, hd)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    angles = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([angles, angles], -1).cos()[:, None, :], torch.cat([angles, angles], -1).sin()[:, None, :]

    def rotate_half(x):
        return torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)

    q_ref, k_ref = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    order = pair_rows(H, nh)
    assert sorted(order.tolist()) == list(range(3 * H)) and order[2 * H:].tolist() == list(range(2 * H, 3 * H))
    qk = torch.stack([q.reshape(B, T, H), k.reshape(B, T, H)], 2)[..., order[:H]].view(B, T, 2, nh, hd)
    rotated = _rotate(qk, rotations(T, hd, 10000.0, "cpu"))
    scores = torch.einsum("bqhd,bkhd->bhqk", rotated[:, :, 0], rotated[:, :, 1])
    reference = torch.einsum("bqhd,bkhd->bhqk", q_ref, k_ref)
    assert torch.allclose(scores, reference, atol=1e-5)


def test_the_last_layer_at_the_masked_positions_gives_the_full_models_loss_and_gradients():
    config = ModelConfig.from_preset("tiny", vocab_size=120, architecture="modernbert", num_hidden_layers=3,
                                     hidden_size=32, num_attention_heads=2, intermediate_size=64).resolved()
    torch.manual_seed(0)
    model = ModernBertPretrainingModel(config)
    ids = torch.randint(5, 120, (4, 20))
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    labels[2, 9] = ids[2, 9]
    nsp = torch.tensor([0, 1, 1, 0])
    sparse = model(ids, None, mask, labels, nsp)
    sparse.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    states = model.final_states(ids, None, mask).reshape(-1, config.hidden_size)          # every position
    chosen = (labels.reshape(-1) != -100).nonzero().squeeze(1)
    logits = F.linear(model.head(states[chosen]), model.word_embeddings, model.decoder.bias)
    full = F.cross_entropy(logits, labels.reshape(-1)[chosen]) + \
        F.cross_entropy(model.pair_classifier(states[torch.arange(4) * 20]), nsp)
    full.backward()
    assert abs(float(sparse.loss.detach()) - float(full.detach())) < 1e-5
    assert torch.equal(sparse.mlm_positions, chosen)
    for name, parameter in model.named_parameters():
        assert torch.allclose(grads[name], parameter.grad, atol=1e-5), name


def test_attention_under_cpu_autocast_is_the_explicit_product_and_agrees_with_fp32_sdpa():
    """In bf16 on CPU the fused kernel's backward is slow, so attention is computed explicitly there; it
    must give what SDPA gives in fp32, padding masked, up to bf16 rounding, values and gradients."""
    torch.manual_seed(0)
    B, nh, T, hd = 3, 2, 16, 8
    q, k, v = (torch.randn(B, nh, T, hd, requires_grad=True) for _ in range(3))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 11:] = 0
    layout = TokenLayout.from_mask(mask, B, T, torch.float32, bucket=False)
    g = torch.randn(B, nh, T, hd)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.attend)
    reference.backward(g)
    expected = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = attention(q, k, v, layout, 0.0)
    assert ours.dtype == torch.bfloat16 and "ScaledDotProduct" not in ours.grad_fn.name()
    ours.backward(g)
    assert torch.allclose(ours.float(), reference, atol=0.05, rtol=0.05)
    for mine, theirs in zip((t.grad for t in (q, k, v)), expected):
        assert torch.allclose(mine, theirs, atol=0.1, rtol=0.05)
    assert "ScaledDotProduct" in attention(q, k, v, layout, 0.0).grad_fn.name()      # fp32: SDPA itself


def test_a_bf16_softmax_gives_the_fp32_softmax_rounded_and_bf16_attention_survives_an_empty_row():
    torch.manual_seed(0)
    scores = (torch.randn(4, 3, 50, 50) * 6).to(torch.bfloat16)
    ours, exact = scores.softmax(-1).float(), scores.float().softmax(-1)
    rounded = exact.to(torch.bfloat16).float()
    # rounded once from fp32: each value is a bf16 neighbour of the fp32 softmax, nearly always the nearest
    # (CPUs' exp differ in the last fp32 bits, so a value at a rounding boundary may take the other one)
    one_step = torch.finfo(torch.bfloat16).eps * exact.abs().clamp_min(torch.finfo(torch.float32).tiny)
    assert ((ours - exact).abs() <= one_step).all()
    assert (ours != rounded).float().mean() < 1e-3
    B, nh, T, hd = 3, 2, 16, 8
    q, k, v = (torch.randn(B, nh, T, hd, requires_grad=True) for _ in range(3))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1] = 0                                                  # a row of padding only: no key to attend to
    layout = TokenLayout.from_mask(mask, B, T, torch.float32, bucket=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v, layout, 0.0)
    (out.float() * torch.randn(out.shape)).sum().backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_vocabulary_loss_gives_cross_entropys_value_and_gradients_block_by_block(dtype, with_bias, monkeypatch):
    monkeypatch.setattr(vocab_loss, "BLOCK_BYTES", 4 * 997 * 64)          # 64 rows a block: 5 blocks, the last short
    torch.manual_seed(0)
    logits = (torch.randn(300, 997) * 4).to(dtype).requires_grad_()
    bias = torch.randn(997, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 997, (300,))
    targets[::7] = vocab_loss.IGNORE_INDEX                                   # bucket padding rows score nothing
    inputs = [logits] + ([bias] if with_bias else [])
    for upstream in (1.0, 0.25, 3.0):                                        # 0.25: a share of accumulated steps
        ours = vocab_loss.vocab_cross_entropy(logits, targets, bias)
        ours_grads = torch.autograd.grad(ours * upstream, inputs)
        plain = F.cross_entropy(logits.float() + (bias if with_bias else 0.0), targets)
        plain_grads = torch.autograd.grad(plain * upstream, inputs)
        assert ours_grads[0].dtype == dtype
        assert torch.allclose(ours, plain, rtol=1e-6)
        for got, want in zip(ours_grads, plain_grads):
            assert torch.allclose(got.float(), want.float(), rtol=1e-2 if dtype == torch.bfloat16 else 1e-5,
                                  atol=1e-9 if got.dtype == dtype else 1e-6)
        assert not ours_grads[0][::7].any()
    # the predictions come with the loss: the largest logit of each row, bias added in fp32
    _, predictions = vocab_loss.vocab_loss_and_predictions(logits, targets, bias)
    assert torch.equal(predictions, (logits.detach().float() + (bias.detach() if with_bias else 0.0)).argmax(-1))
    with torch.no_grad():                                                    # evaluation: the plain loss
        assert torch.allclose(vocab_loss.vocab_cross_entropy(logits, targets, bias), plain)
        assert vocab_loss.vocab_loss_and_predictions(logits, targets, bias)[1] is None   # top_tokens' job there


@pytest.mark.skipif(not cpu_linear.AVAILABLE, reason="the padded projection is oneDNN's, on x86 CPUs")
@pytest.mark.parametrize("with_bias", [False, True])
def test_the_padded_vocabulary_projection_gives_the_plain_projections_loss_and_gradients(with_bias):
    torch.manual_seed(0)
    states = torch.randn(96, 64, requires_grad=True)
    weight = (torch.randn(1001, 64) * 0.1).requires_grad_()                   # 1,001 rows: padded to 1,024
    bias = (torch.randn(1001) * 0.5).requires_grad_() if with_bias else None
    targets = torch.randint(0, 1001, (96,))
    targets[-7:] = vocab_loss.IGNORE_INDEX
    inputs = [states, weight] + ([bias] if with_bias else [])
    for upstream in (1.0, 0.7):                                               # 0.7: the gradient is scaled on its way
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, added = cpu_linear.vocabulary_logits(states, weight, bias)
            loss, predictions = vocab_loss.vocab_loss_and_predictions(logits, targets, bias, added)
            plain_logits = F.linear(states, weight)
            plain, plain_predictions = vocab_loss.vocab_loss_and_predictions(plain_logits, targets, bias)
        assert added == with_bias and logits.dtype == torch.bfloat16
        assert logits.stride() == (1024, 1) and plain_logits.stride() == (1001, 1)
        expected_logits = plain_logits.float() + (bias.detach() if with_bias else 0.0)
        assert torch.allclose(logits.float(), expected_logits, rtol=1e-2, atol=2e-2)  # bf16 rounds once or twice
        assert torch.allclose(loss, plain, rtol=1e-3)
        assert (predictions == plain_predictions).float().mean() > 0.95        # near-ties may round apart
        ours = torch.autograd.grad(loss * upstream, inputs)
        theirs = torch.autograd.grad(plain * upstream, inputs)
        for got, want in zip(ours, theirs):
            assert got.dtype == want.dtype and got.shape == want.shape
            assert torch.allclose(got, want, rtol=2e-2, atol=1e-5)
    with torch.no_grad():                                                     # evaluation: the plain projection
        logits, added = cpu_linear.vocabulary_logits(states, weight, bias)
        assert logits.is_contiguous() and not added


@pytest.mark.skipif(not cpu_linear.AVAILABLE, reason="the padded projection is oneDNN's, on x86 CPUs")
@pytest.mark.parametrize("vocab", [9001, 8224])                  # three chunks; a multiple of 32 (no pad rows)
def test_the_chunked_projection_rounds_the_logits_with_the_bias_as_autocast_does(vocab):
    torch.manual_seed(0)
    states = torch.randn(80, 96, requires_grad=True)
    weight = (torch.randn(vocab, 96) * 0.1).requires_grad_()
    bias = (torch.randn(vocab) * 0.5).requires_grad_()
    assert vocab > 2 * cpu_linear.COLUMN_CHUNK
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, added = cpu_linear.vocabulary_logits(states, weight, bias)
        plain = F.linear(states, weight, bias)                  # the bias cast to bf16, added to fp32 sums
    assert added and logits.dtype == torch.bfloat16 and logits.stride() == (-(-vocab // 32) * 32, 1)
    x, w, b = (t.detach().bfloat16().double() for t in (states, weight, bias))
    exact, terms = x @ w.t() + b, x.abs() @ w.abs().t() + b.abs()
    ulp = 2.0 ** (torch.floor(torch.log2(exact.abs().clamp(min=1e-30))) - 7)      # bf16's spacing there
    for got in (logits, plain):          # each rounded once; fp32 sums in another order (cancellation)
        assert ((got.double() - exact).abs() <= ulp + 2.0 ** -16 * terms).all()
    assert (logits != plain).float().mean() < 0.01


@pytest.mark.skipif(not cpu_linear.AVAILABLE, reason="the padded projection is oneDNN's, on x86 CPUs")
def test_the_embeddings_backward_adds_up_the_tied_weights_gradient_from_both_uses(monkeypatch):
    from workbench.model import modernbert

    torch.manual_seed(0)
    model = ModernBertPretrainingModel(ModelConfig.from_preset("tiny", vocab_size=1001))    # padded to 1,024
    ids = torch.randint(5, 1001, (4, 24))
    labels = torch.where(torch.rand(4, 24) < 0.3, ids, -100)
    handed = []
    original = modernbert._TiedEmbedding.backward

    def spy(ctx, grad):
        handed.append(ctx.tied.grad is not None)
        return original(ctx, grad)

    monkeypatch.setattr(modernbert._TiedEmbedding, "backward", staticmethod(spy))
    grads = []
    for handed_over in (True, False):
        if not handed_over:                       # each use's gradient to autograd, which adds them
            monkeypatch.setattr(modernbert, "TiedGradient", lambda: None)
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(ids, None, torch.ones_like(ids), mlm_labels=labels, pair_head=False)
        out.loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    tied, plain = grads
    assert handed == [True]                        # the decoder handed its gradient over; then no tied lookup
    assert tied.keys() == plain.keys()
    weight = "model.embeddings.tok_embeddings.weight"
    assert torch.allclose(tied[weight], plain[weight], rtol=0, atol=1e-6)      # the same sum, added in another order
    assert plain[weight][ids.unique()].abs().sum() > 0
    for name in tied:
        if name != weight:
            assert torch.equal(tied[name], plain[name]), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_vocabulary_weights_gradient_comes_back_in_rows_of_the_weights_dtype(dtype):
    torch.manual_seed(0)
    full = torch.randn(70, 1024).bfloat16()                                  # (R, Vp) gradient, V = 1,001
    x = torch.randn(70, 48).bfloat16()
    got = cpu_linear._weight_gradient(full, x, 1001, dtype)
    want = (full[:, :1001].double().t() @ x.double())                       # (V, H)
    assert got.dtype == dtype and got.shape == (1001, 48) and got.is_contiguous()
    assert torch.allclose(got.double(), want, rtol=2 ** -7, atol=1e-3)      # one bf16 rounding


def test_padded_rows_reuses_a_padded_buffer_and_copies_anything_else():
    buffer = cpu_linear.rows_like(torch.empty(5, 1024)[:, :1001])          # rows 1,024 apart, as the loss makes them
    buffer.fill_(2.0)
    full = cpu_linear.padded_rows(buffer, 1024)
    assert full.data_ptr() == buffer.data_ptr() and not full[:, 1001:].any() and (full[:, :1001] == 2).all()
    plain = torch.full((5, 1001), 3.0)
    copied = cpu_linear.padded_rows(plain, 1024)
    assert copied.data_ptr() != plain.data_ptr() and not copied[:, 1001:].any() and (copied[:, :1001] == 3).all()
    assert cpu_linear.rows_like(plain).is_contiguous()


def test_the_split_gated_projection_gives_the_one_matmul_mlps_values_and_gradients_bit_for_bit():
    torch.manual_seed(0)
    x, weight = torch.randn(300, 64), torch.randn(2 * 96, 64) * 0.1
    upstream = torch.randn(300, 96).to(torch.bfloat16)
    results = []
    for gated in (_GatedProjection.apply, lambda t, w: _GatedGelu.apply(F.linear(t, w))):
        leaves = x.clone().requires_grad_(), weight.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = gated(*leaves)
        out.backward(upstream)
        results.append((out.detach(), *(leaf.grad for leaf in leaves)))
    for ours, theirs in zip(*results):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
    model = ModernBertPretrainingModel(ModelConfig.from_preset("tiny", vocab_size=100))
    with torch.autocast("cpu", dtype=torch.bfloat16):                         # bf16 CPU training takes it
        out = model.model.layers[0].mlp(torch.randn(8, model.config.hidden_size, requires_grad=True))
    nodes, seen = [out.grad_fn], set()
    while nodes:                                                              # every node of the graph behind out
        node = nodes.pop()
        seen.add(node.name())
        nodes += [n for n, _ in node.next_functions if n is not None]
    assert "_GatedProjectionBackward" in seen and "_GatedGeluBackward" not in seen


def _outputs_and_gradient(split, qkv: torch.Tensor, upstream: list[torch.Tensor]):
    """``split``'s (q, k, v) for a copy of ``qkv`` and the gradient it sends back for ``upstream``."""
    leaf = qkv.clone().requires_grad_()
    outs = split(leaf)
    torch.autograd.backward(outs, upstream)
    return [o.detach() for o in outs], leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_rotary_qkv_split_gives_autograds_values_and_gradients_bit_for_bit(dtype):
    torch.manual_seed(0)
    qkv = torch.randn(3, 10, 3, 2, 8).to(dtype)                                 # (B, T, 3, nh, hd)
    rotation = rotations(10, 8, 10000.0, "cpu")
    upstream = [torch.randn(3, 2, 10, 8).to(dtype) for _ in range(3)]

    def plain(t):
        q, k = _rotate(t[:, :, :2], rotation).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, t[:, :, 2].transpose(1, 2)

    (ours, ours_grad), (theirs, their_grad) = (_outputs_and_gradient(split, qkv, upstream)
                                               for split in (lambda t: _RotaryQkv.apply(t, rotation), plain))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert ours_grad.dtype == dtype and torch.equal(ours_grad, their_grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_rotary_qkv_split_scales_the_queries_by_a_power_of_two_bit_for_bit(dtype):
    torch.manual_seed(0)
    qkv = torch.randn(3, 10, 3, 2, 64).to(dtype)                                # hd = 64: the scale is 2**-3
    rotation = rotations(10, 64, 10000.0, "cpu")
    upstream = [torch.randn(3, 2, 10, 64).to(dtype) for _ in range(3)]
    (ours, ours_grad), (theirs, their_grad) = (
        _outputs_and_gradient(scaled, qkv, upstream)
        for scaled in (lambda t: _RotaryQkv.apply(t, rotation, 64 ** -0.5),
                       lambda t: (lambda q, k, v: (q * 64 ** -0.5, k, v))(*_RotaryQkv.apply(t, rotation))))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert torch.equal(ours_grad, their_grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_gated_gelu_gives_autograds_values_and_gradients(dtype):
    torch.manual_seed(0)
    both = torch.randn(37, 2 * 24).to(dtype)
    upstream = torch.randn(37, 24).to(dtype)
    results = []
    for gated in (_GatedGelu.apply, lambda t: F.gelu(t.chunk(2, -1)[0]) * t.chunk(2, -1)[1]):
        leaf = both.clone().requires_grad_()
        out = gated(leaf)
        out.backward(upstream)
        results.append((out.detach(), leaf.grad))
    (out, grad), (plain_out, plain_grad) = results
    assert torch.equal(out, plain_out) and torch.equal(grad[:, 24:], plain_grad[:, 24:])      # output, gate
    # the value's gradient: (grad * gelu') * gate against autograd's (grad * gate) * gelu', rounded apart
    close = dict(rtol=2 ** -7, atol=1e-3) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad[:, :24].float(), plain_grad[:, :24].float(), **close)
    assert grad.dtype == dtype and grad[:, :24].abs().sum() > 0 and grad[:, 24:].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_top_tokens_are_argmax_with_the_first_maximum_on_ties(dtype):
    torch.manual_seed(0)
    logits = torch.randn(200, 997).to(dtype)
    logits[:50, 700] = logits[:50, 300] = logits[:50].max(-1).values + 1       # a tie: the earlier index wins
    logits[50:100] = torch.randint(0, 3, (50, 997)).to(dtype)                   # many ties per row
    chosen = vocab_loss.top_tokens(logits)
    assert torch.equal(chosen, logits.argmax(-1))
    assert (chosen[:50] == 300).all()


def test_the_lane_wise_first_maximum_is_max_with_the_first_index_on_ties():
    torch.manual_seed(0)
    x = torch.randn(120, 40 * vocab_loss.LANES)
    x[:20, 45] = x[:20, 66] = x[:20].max(-1).values + 1                # a tie across lanes: 45 (lane 13) comes
    #                                                                       first, though 66's lane (2) is lower
    x[20:40, 1000] = x[20:40, 1000 + 3 * vocab_loss.LANES] = 50.0        # a tie within one lane
    x[40:60] = torch.randint(0, 3, (20, x.shape[1])).float()             # many ties per row
    x[60:80, -9:] = float("-inf")                                         # the vocabulary's padding
    x[80, 5] = float("nan")
    top, best = vocab_loss.first_maximum(x.clone())
    expected = x.max(-1)
    assert torch.equal(best, expected.indices)
    assert torch.allclose(top, expected.values, equal_nan=True)
    assert (best[:20] == 45).all() and (best[20:40] == 1000).all()


def test_a_tuned_allocator_reuses_a_freed_big_buffer_instead_of_faulting_it_in_again():
    assert keep_freed_memory_for_reuse()

    def faults_for_a_fresh_buffer() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        buffer = torch.empty(64 << 20, dtype=torch.uint8)
        buffer.fill_(1)                                                     # touch every page (16k of them)
        del buffer
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    # glibc's default maps and faults in all 16,384 pages every time; tuned, a round reuses freed heap
    # memory (not every round: an aligned request may not fit the block just freed, so the heap grows once)
    assert min(faults_for_a_fresh_buffer() for _ in range(6)) < 1000


def test_the_padded_layout_scatter_puts_the_tokens_in_place_and_hands_back_their_gradient():
    torch.manual_seed(0)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[0, 7:], mask[2, 4:] = 0, 0                                           # 30 positions, 21 real
    layout = TokenLayout.from_mask(mask, 3, 10, torch.float32, bucket=False)
    packed = torch.randn(21, 5, requires_grad=True)
    padded = layout.scatter(packed)                                           # (30, 5)
    real = mask.reshape(-1).bool()
    assert torch.equal(padded[real], packed.detach()) and not padded[~real].any()
    upstream = torch.randn(30, 5)
    (grad,) = torch.autograd.grad(padded, packed, upstream)
    assert torch.equal(grad, upstream[real])
