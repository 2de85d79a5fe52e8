"""Function-preserving widening (gaacnn.widen): the wider model decodes what the trained one did."""

from dataclasses import replace

import pytest
import torch

from gaacnn import widen
from gaacnn.errors import GaacnnError
from gaacnn.model import GAACNN
from gaacnn.presets import get_preset

# tiny with g_a's H/2 width apart from its latent's, as in small (32 against 40): the same modules then
# exist in both models (a pooled skip between equal widths has no projection to widen).
TINY = replace(get_preset("tiny"), name="tiny-6", width=6, synthesis_outputs=(8, 6, 6))
TINY_WIDE = replace(TINY, name="tiny-wide", stem=6, width=12, synthesis_outputs=(12, 12, 12))


def _trained_tiny(seed: int = 1) -> GAACNN:
    """A tiny model whose every parameter is random, as a trained one's are (GDN's gamma included)."""
    torch.manual_seed(seed)
    model = GAACNN(TINY)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gamma" in name and p.dim() == 2:  # GDN: positive couplings between all channels
                p.copy_(p + 0.05 * torch.rand_like(p))
            elif not name.endswith("quantiles"):
                p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("training", [False, True])
def test_the_wider_model_computes_what_the_trained_one_did(training):
    small = _trained_tiny()
    wide = widen.widen(small, TINY_WIDE)
    assert sum(p.numel() for p in wide.g_a.parameters()) > sum(p.numel() for p in small.g_a.parameters())
    x = torch.rand(2, 3, 64, 64)
    small.train(training)
    wide.train(training)
    y_small, y_wide = small.g_a(x), wide.g_a(x)
    torch.testing.assert_close(y_wide, y_small, rtol=1e-5, atol=1e-5 * y_small.abs().max().item())
    y_hat = torch.round(y_small)
    x_small = small.g_s(y_hat)
    torch.testing.assert_close(wide.g_s(y_hat), x_small, rtol=1e-5, atol=1e-5 * x_small.abs().max().item())


def test_new_channels_learn_from_the_first_step():
    """The zero weights into old outputs get gradients: widening is not a dead end. (The trained model's
    coding tables are built, as a shipped model's are: they carry over as they are.)"""
    small = _trained_tiny()
    small.update(force=True)
    wide = widen.widen(small, TINY_WIDE)
    table = wide.entropy_bottleneck._quantized_cdf
    assert table.numel() and torch.equal(table, small.entropy_bottleneck._quantized_cdf)
    out = wide.g_s(torch.round(wide.g_a(torch.rand(1, 3, 64, 64))))
    out.square().mean().backward()
    head = wide.g_s.head[1].weight  # conv(C0 -> 3): its inputs 4.. are new channels
    assert torch.all(head[:, TINY.stem:] == 0) and head.grad[:, TINY.stem:].abs().sum() > 0


def test_a_wider_latent_codes_the_old_channels_as_before():
    """M grown (8 -> 16): g_s reads the new latent channels with zero weights, and the entropy model gives
    every old channel the parameters it had (h_s's 2M outputs are two blocks of M, the GAT's similarity
    graph sees zeros in the new channels), so x_hat and the old channels' rate are the trained model's."""
    small = _trained_tiny().eval()
    wide = widen.widen(small, replace(TINY, name="tiny-m16", latent=16)).eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        before, after = small(x), wide(x)
    scale = before["x_hat"].abs().max().item()  # a random tiny model's output is large: compare relatively
    torch.testing.assert_close(after["x_hat"], before["x_hat"], rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(after["likelihoods"]["z"], before["likelihoods"]["z"])
    y_before, y_after = before["likelihoods"]["y"], after["likelihoods"]["y"]
    assert y_after.shape[1] == 16
    torch.testing.assert_close(y_after[:, :8], y_before, rtol=1e-4, atol=1e-6)


def test_grouped_dimensions_keep_each_block_in_place():
    """h_s's last conv: old outputs (a0 a1 | b0 b1) go to (a0 a1 _ _ | b0 b1 _ _), not to the leading four."""
    out = widen.widened_tensor(torch.arange(1.0, 5.0), torch.zeros(8), groups={0: 2})
    assert out.tolist() == [1, 2, 0, 0, 3, 4, 0, 0]
    weight = widen.widened_tensor(torch.ones(4, 3), torch.full((8, 5), 7.0), io_dims=(0, 1), groups={0: 2})
    assert weight[[0, 1, 4, 5], 3:].abs().sum() == 0 and torch.all(weight[[2, 3, 6, 7]] == 7)


def test_widening_refuses_another_hyper_latent_size():
    with pytest.raises(GaacnnError, match="N2"):
        widen.widen(_trained_tiny(), replace(TINY_WIDE, hyper=12))


def test_a_widened_checkpoint_carries_adams_moments(tmp_path, monkeypatch):
    small = _trained_tiny()
    opt = torch.optim.Adam([p for n, p in small.named_parameters() if not n.endswith("quantiles")])
    small(torch.rand(1, 3, 64, 64))["x_hat"].mean().backward()
    opt.step()
    aux = torch.optim.Adam([p for n, p in small.named_parameters() if n.endswith("quantiles")])
    source = tmp_path / "small.pt"
    torch.save({"model": small.state_dict(), "opt": opt.state_dict(), "aux_opt": aux.state_dict(), "step": 1,
                "config": {"arch": "gaacnn", "preset": "tiny-6", "context": True}}, source)
    monkeypatch.setitem(widen.WIDER, "tiny-6", TINY)
    monkeypatch.setitem(widen.WIDER, "tiny-wide", TINY_WIDE)
    state = torch.load(widen.widen_checkpoint(source, "tiny-wide", tmp_path / "wide.pt"), weights_only=False)
    wide = GAACNN(TINY_WIDE)
    wide.load_state_dict(state["model"])
    head = [n for n, _ in wide.named_parameters() if not n.endswith("quantiles")].index("g_s.head.1.weight")
    moment, first = state["opt"]["state"][head]["exp_avg_sq"], state["opt"]["state"][head]["exp_avg"]
    assert moment.shape == wide.g_s.head[1].weight.shape and torch.all(first[:, TINY.stem:] == 0)
    # new entries' second moments at the old ones' mean: their first steps as large as the old ones'
    old = opt.state_dict()["state"][[n for n, _ in small.named_parameters() if not n.endswith("quantiles")]
                                    .index("g_s.head.1.weight")]["exp_avg_sq"]
    assert torch.equal(moment[:, : TINY.stem], old) and state["config"]["preset"] == "tiny-wide"
    torch.testing.assert_close(moment[:, TINY.stem:], torch.full_like(moment[:, TINY.stem:], float(old.mean())))
    fresh = torch.optim.Adam([p for n, p in wide.named_parameters() if not n.endswith("quantiles")])
    fresh.load_state_dict(state["opt"])
    wide(torch.rand(1, 3, 64, 64))["x_hat"].mean().backward()
    fresh.step()  # the moments' shapes line up with the wider parameters


def test_a_wider_latent_checkpoint_keeps_each_entropy_parameters_moment_in_place(tmp_path, monkeypatch):
    """h_s's last conv holds two blocks of M outputs: Adam's moments move with their weights, block by block."""
    small = _trained_tiny()
    opt = torch.optim.Adam([p for n, p in small.named_parameters() if not n.endswith("quantiles")])
    small(torch.rand(1, 3, 64, 64))["likelihoods"]["y"].log().sum().backward()
    opt.step()
    source = tmp_path / "small.pt"
    torch.save({"model": small.state_dict(), "opt": opt.state_dict(), "step": 1,
                "config": {"arch": "gaacnn", "preset": "tiny-6", "context": True}}, source)
    wide_preset = replace(TINY, name="tiny-m16", latent=16)
    monkeypatch.setitem(widen.WIDER, "tiny-6", TINY)
    monkeypatch.setitem(widen.WIDER, "tiny-m16", wide_preset)
    state = torch.load(widen.widen_checkpoint(source, "tiny-m16", tmp_path / "wide.pt"), weights_only=False)
    names = [n for n, _ in GAACNN(wide_preset).named_parameters() if not n.endswith("quantiles")]
    last = f"h_s.params.{len(small.h_s.params) - 1}.bias"
    old = opt.state_dict()["state"][[n for n, _ in small.named_parameters() if not n.endswith("quantiles")].index(last)]
    moment = state["opt"]["state"][names.index(last)]["exp_avg_sq"]
    assert torch.equal(moment[:8], old["exp_avg_sq"][:8]) and torch.equal(moment[16:24], old["exp_avg_sq"][8:])
    fill = float(old["exp_avg_sq"].mean())
    assert torch.all(moment[8:16] == fill) and torch.all(moment[24:] == fill)


@pytest.mark.skipif(__import__("gaacnn.data", fromlist=["mirror_root"]).mirror_root() is None,
                    reason="needs the data mirror")
def test_training_continues_from_a_widened_checkpoint(tmp_path, monkeypatch):
    """A cooldown of the widened trunk: train() builds the wider preset by name and takes its moments."""
    from gaacnn.train import TrainConfig, train

    monkeypatch.setitem(widen.WIDER, "tiny-6", TINY)
    monkeypatch.setitem(widen.WIDER, "tiny-wide", TINY_WIDE)
    base = dict(arch="gaacnn", metric="mse", lmbda=0.01, batch=1, patch=64, train_set="cid22-valid",
                val_set="cid22-valid", val_every=0, ckpt_every=1, log_every=1, threads=1, warmup=0)
    train(TrainConfig(preset="tiny-6", steps=2, out=str(tmp_path / "small"), **base), progress=False)
    wide = widen.widen_checkpoint(tmp_path / "small" / "checkpoint.pt", "tiny-wide", tmp_path / "wide.pt")
    result = train(TrainConfig(preset="tiny-wide", steps=2, init=str(wide), init_optimizer=True,
                               out=str(tmp_path / "wide"), **base), progress=False)
    assert result["model"].preset == TINY_WIDE and result["step"] == 2


@pytest.mark.skipif(__import__("gaacnn.data", fromlist=["mirror_root"]).mirror_root() is None,
                    reason="needs the data mirror")
def test_a_widened_trunk_stretch_keeps_its_lr_and_continues_where_it_stopped(tmp_path, monkeypatch):
    """benchmarks/widen_stretch.py: trunks.branch at constant lr from a widened trunk checkpoint re-warms,
    then holds the trunk's lr (no decay), and a second call continues the stretch instead of restarting."""
    from gaacnn import trunks
    from gaacnn.train import TrainConfig, train

    monkeypatch.setitem(widen.WIDER, "tiny-6", TINY)
    monkeypatch.setitem(widen.WIDER, "tiny-wide", TINY_WIDE)
    cfg = TrainConfig(arch="gaacnn", preset="tiny-6", metric="mse", lmbda=0.01, steps=10**7, decay=0.0, warmup=0,
                      batch=1, patch=64, train_set="cid22-valid", val_set="cid22-valid", val_every=0, ckpt_every=1,
                      log_every=1, threads=1, out=str(tmp_path / "trunk"))
    monkeypatch.setattr(trunks, "TRUNKS", {"tiny": cfg})
    train(replace(cfg, steps=2), progress=False)
    wide = widen.widen_checkpoint(tmp_path / "trunk" / "checkpoint.pt", "tiny-wide", tmp_path / "wide.pt")
    stretch = dict(preset="tiny-wide", decay=0.0, val_every=0, ckpt_every=1)
    trunks.branch("tiny", wide, tmp_path / "stretch", 0.01, 3, threads=1, rewarm=2, **stretch)
    result = trunks.branch("tiny", wide, tmp_path / "stretch", 0.01, 5, threads=1, rewarm=0, **stretch)
    assert result["model"].preset == TINY_WIDE and result["step"] == 5
    rates = [float(r.split(",")[7]) for r in (tmp_path / "stretch" / "train.csv").read_text().splitlines()[1:]]
    assert rates == pytest.approx([cfg.lr / 2, cfg.lr, cfg.lr, cfg.lr, cfg.lr])  # re-warmed once, then held


@pytest.mark.skipif(__import__("gaacnn.data", fromlist=["mirror_root"]).mirror_root() is None,
                    reason="needs the data mirror")
def test_a_widened_trunk_begins_as_its_source_widened_and_then_grows_on_its_own(tmp_path, monkeypatch):
    """trunks.WIDENED: the first grow widens the source trunk's checkpoint (its history the parent); later
    grows resume the wide trunk's own checkpoint, even with the start file gone (a fresh clone)."""
    from gaacnn import trunks
    from gaacnn.train import TrainConfig, train

    monkeypatch.setitem(widen.WIDER, "tiny-6", TINY)
    monkeypatch.setitem(widen.WIDER, "tiny-wide", TINY_WIDE)
    base = dict(arch="gaacnn", metric="mse", lmbda=0.01, steps=10**7, decay=0.0, warmup=0, batch=1, patch=64,
                train_set="cid22-valid", val_set="cid22-valid", val_every=0, ckpt_every=1, log_every=1, threads=1)
    source = TrainConfig(preset="tiny-6", out=str(tmp_path / "trunk"), **base)
    wide = TrainConfig(preset="tiny-wide", init=str(tmp_path / "wide-start.pt"), init_optimizer=True,
                       out=str(tmp_path / "wide"), **base)
    monkeypatch.setattr(trunks, "TRUNKS", {"tiny": source, "tiny-wide": wide})
    monkeypatch.setattr(trunks, "WIDENED", {"tiny-wide": "tiny"})
    with pytest.raises(GaacnnError, match="grow or restore that trunk first"):
        trunks.grow("tiny-wide", 5.0, threads=1, steps=1)
    train(replace(source, steps=3), progress=False)
    first = trunks.grow("tiny-wide", 5.0, threads=1, steps=2)
    assert first["model"].preset == TINY_WIDE and first["step"] == 2
    state = torch.load(tmp_path / "wide" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["history"]["parent"]["step"] == 3  # where the source trunk stood when it was widened
    (tmp_path / "wide-start.pt").unlink()
    assert trunks.widened_start("tiny-wide") is None  # begun: its own checkpoint is what grows
    assert trunks.grow("tiny-wide", 5.0, threads=1, steps=4)["step"] == 4
