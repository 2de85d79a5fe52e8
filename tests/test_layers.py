import pytest
import torch

from gaacnn import GAACNN
from gaacnn.acnn import ACNN, ACBlock
from gaacnn.attention import AttentionModule, CoordinateAttention
from gaacnn.graph import GraphAttentionBranch, similarity_adjacency
from gaacnn.presets import get_preset
from gaacnn.transforms import count_parameters


def test_acblock_is_sum_of_three_kernels():
    block = ACBlock(4)
    x = torch.randn(1, 4, 9, 7)
    expected = block.square(x) + block.vertical(x) + block.horizontal(x)
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert block.vertical.weight.shape[-2:] == (3, 1)
    assert block.horizontal.weight.shape[-2:] == (1, 3)


def test_acnn_dense_residual_sum():
    acnn = ACNN(3, blocks=3)
    x = torch.randn(2, 3, 8, 8)
    b1 = acnn.blocks[0](x)
    b2 = acnn.blocks[1](torch.relu(b1))
    b3 = acnn.blocks[2](torch.relu(b2))
    assert torch.allclose(acnn(x), x + b1 + b2 + b3, atol=1e-6)


def test_attention_weighting_starts_at_beta1_gamma0():
    att = AttentionModule(8, rcab_blocks=1).eval()
    x, skip = torch.randn(1, 8, 6, 10), torch.randn(1, 8, 6, 10)
    assert torch.allclose(att(x, skip), att(x))  # gamma = 0 at initialisation
    with torch.no_grad():
        att.gamma.fill_(0.5)
    assert torch.allclose(att(x, skip), att(x) + 0.5 * skip, atol=1e-6)
    assert CoordinateAttention(8).eval()(x).shape == x.shape


def test_similarity_graph():
    nodes = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [-1.0, 0.0], [0.0, 0.0]]])
    adj = similarity_adjacency(nodes)[0]
    assert torch.equal(adj, adj.t())
    assert torch.all(adj.diagonal() == 1)  # self-loops, even for a zero vector
    assert adj[0, 1] == 1 and adj[0, 2] == 0 and adj[1, 3] == 0


def test_gat_branch_shape_and_attention_rows_sum_to_one():
    gat = GraphAttentionBranch(6, dropout=0.0).eval()
    x = torch.randn(2, 6, 3, 5)
    assert gat(x).shape == x.shape
    weights, adj = gat.attention_weights(x)
    assert weights.shape == (2, 15, 15)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 15), atol=1e-5)
    assert torch.all(weights[adj == 0] == 0)


@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize("context", [True, False])
def test_shapes_at_every_stage(preset, context):
    p = get_preset(preset)
    model = GAACNN(preset, context=context).eval()
    x = torch.rand(1, 3, 128, 192)
    y = model.g_a(x)
    assert y.shape == (1, p.latent, 8, 12)
    z = model.h_a(y)
    assert z.shape == (1, p.hyper, 2, 3)
    hyper = model.h_s(z)
    assert hyper.shape == (1, 2 * p.latent, 8, 12)
    assert model.g_s(y).shape == x.shape
    out = model(x)
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == y.shape
    assert out["likelihoods"]["z"].shape == z.shape
    lk = out["likelihoods"]["y"]
    assert torch.all((lk > 0) & (lk <= 1))


def test_paper_presets_parameter_count_is_close_to_the_authors():
    # The design note counts about 86 M (M = 192) and 224 M (M = 320) parameters in the authors' code.
    assert count_parameters(GAACNN("paper-low")) == pytest.approx(86e6, rel=0.03)
    assert count_parameters(GAACNN("paper-high")) == pytest.approx(224e6, rel=0.03)


def test_bits_by_border_distance_rings():
    from gaacnn.diagnostics import bits_by_border_distance

    bits = torch.zeros(6, 8)
    bits[0, :] = bits[-1, :] = bits[:, 0] = bits[:, -1] = 4.0  # the edge ring
    bits[1:5, 1:7] = 2.0
    bits[2:4, 2:6] = 1.0  # the innermost ring (distance 2)
    profile = bits_by_border_distance(bits)
    assert profile.tolist() == [4.0, 2.0, 1.0]
    square = torch.arange(64.0).reshape(8, 8)
    assert len(bits_by_border_distance(square)) == 4
    assert float(bits_by_border_distance(square)[3]) == float(square[3:5, 3:5].mean())


def test_quantization_gap_compares_unrounded_and_rounded_latents():
    from gaacnn.diagnostics import quantization_gap
    from gaacnn.loss import psnr

    torch.manual_seed(0)
    model = GAACNN("tiny").train()
    x = torch.rand(1, 3, 50, 70)  # padded to 64 x 128 inside, like the codec pads
    gap = quantization_gap(model, x)
    assert model.training  # left as it was
    model.eval()
    with torch.no_grad():
        pad = torch.nn.functional.pad(x, (29, 29, 7, 7), mode="replicate")
        smooth = model.g_s(model.g_a(pad))[..., 7:57, 29:99].clamp(0, 1)
        coded = model(pad)["x_hat"][..., 7:57, 29:99].clamp(0, 1)  # eval mode: y rounded
    assert gap["psnr_unrounded"] == pytest.approx(psnr(float(((smooth - x) ** 2).mean())), abs=1e-4)
    assert gap["psnr_rounded"] == pytest.approx(psnr(float(((coded - x) ** 2).mean())), abs=1e-4)
    assert gap["psnr_rounded"] != gap["psnr_unrounded"]
    assert gap["gap_db"] == pytest.approx(gap["psnr_unrounded"] - gap["psnr_rounded"])


def test_entropy_models_stay_float32_under_autocast():
    """Mixed precision runs the transforms in bf16 but the likelihoods in float32 (the rate term)."""
    torch.manual_seed(0)
    for context in (True, False):
        model = GAACNN("tiny", context=context).train()
        seen = []
        entropy = [model.entropy_bottleneck] + ([model.context_model, model.entropy_parameters] if context else [])
        for m in entropy:
            m.register_forward_hook(
                lambda mod, args, out, seen=seen: seen.append(out[0] if isinstance(out, tuple) else out))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(torch.rand(1, 3, 64, 64))
        assert seen and all(t.dtype == torch.float32 for t in seen)
        assert out["likelihoods"]["y"].dtype == torch.float32 and out["likelihoods"]["z"].dtype == torch.float32
        assert out["x_hat"].dtype == torch.bfloat16  # the transforms did run in bf16


def test_acblock_folds_into_one_3x3_kernel():
    torch.manual_seed(0)
    block = ACBlock(5, 7)
    x = torch.randn(2, 5, 19, 23)
    folded = block.fold()
    assert folded.kernel_size == (3, 3)
    assert torch.allclose(folded(x), block(x), atol=1e-5)
    block.vertical.weight.data += 1  # the fold reads the block's kernels, not a copy made before
    assert not torch.allclose(folded(x), block(x), atol=1e-3)


def test_plain_stack_folds_like_an_acnn_with_folded_blocks():
    """An ACNN whose blocks are folded is exactly a PlainStack with the folded kernels (notebook 01's baseline)."""
    from gaacnn.acnn import PlainStack

    torch.manual_seed(0)
    acnn, plain = ACNN(4, 3), PlainStack(4, 3)
    for block, conv in zip(acnn.blocks, plain.convs):
        conv.load_state_dict(block.fold().state_dict())
    x = torch.randn(1, 4, 16, 16)
    assert torch.allclose(acnn(x), plain(x), atol=1e-5)


def test_folded_training_forward_matches_three_branches_in_value_and_gradient():
    """forward runs one folded kernel; the function and every branch's gradient equal the literal sum's."""
    torch.manual_seed(1)
    block = ACBlock(6, 5)
    x = torch.randn(2, 6, 9, 11)
    grads = []
    for run in (block.forward, block.branches):
        block.zero_grad()
        out = run(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in block.named_parameters()})
        grads.append(out.detach())
    assert torch.allclose(grads[1], grads[3], atol=1e-5)
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[2][name], atol=1e-4), name
    assert grads[0]["vertical.weight"].shape == (5, 6, 3, 1)


def test_entropy_parameters_are_computed_by_the_literal_branches_in_eval():
    """h_s feeds the CDFs, so in eval its blocks run as earlier files were written; g_s may fold."""
    torch.manual_seed(0)
    model = GAACNN("tiny").eval()
    z = torch.randn(2, model.preset.hyper, 4, 5).round()
    out = model.h_s(z)
    literal = []
    for block in model.h_s.modules():
        if isinstance(block, ACBlock):
            literal.append(block)
            block.forward = block.branches
    assert literal and torch.equal(model.h_s(z), out)
    assert not any(b.literal_in_eval for b in model.g_s.modules() if isinstance(b, ACBlock))
