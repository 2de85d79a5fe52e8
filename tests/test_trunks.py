"""Trunks: grown, stored in git (compact), restored on a fresh clone, cooled down (gaacnn.trunks)."""

import shutil

import numpy as np
import pytest
import torch

from gaacnn import trunks
from gaacnn.train import TrainConfig

pytestmark = pytest.mark.skipif(
    __import__("gaacnn.data", fromlist=["mirror_root"]).mirror_root() is None, reason="needs the data mirror"
)


@pytest.fixture
def tiny_trunk(tmp_path, monkeypatch):
    cfg = TrainConfig(arch="gaacnn", preset="tiny", metric="mse", lmbda=0.01, steps=10**7, decay=0.0, warmup=2,
                      batch=2, patch=64, train_set="cid22-valid", val_set="cid22-valid", val_images=1, val_crop=64,
                      val_every=0, ckpt_every=1, log_every=1, out="runs/trunk/tiny", threads=1)
    monkeypatch.setattr(trunks, "ROOT", tmp_path)
    monkeypatch.setattr(trunks, "STORE", tmp_path / "trunks")
    monkeypatch.setattr(trunks, "TRUNKS", {"tiny": cfg})
    return tmp_path


def test_a_stored_trunk_continues_on_a_fresh_clone(tiny_trunk):
    run = tiny_trunk / "runs" / "trunk" / "tiny"
    trunks.grow("tiny", minutes=0, steps=3)  # grow to step 3 (the budget stands in for the minutes)
    stored = trunks.store("tiny")
    full = torch.load(run / "checkpoint.pt", weights_only=False)
    small = torch.load(stored, weights_only=False)
    assert small["step"] == 3 and stored.stat().st_size < (run / "checkpoint.pt").stat().st_size
    moments = [v["exp_avg_sq"] for v in small["opt"]["state"].values()]
    assert all(m.dtype == torch.bfloat16 for m in moments) and any((m > 0).any() for m in moments)
    assert all(small["model"][k].dtype == v.dtype for k, v in full["model"].items())  # weights stay float32

    (run / "val.csv").write_text("step,loss\n3,1.0\n")
    (stored.parent / "val.csv").write_text("step,loss\n3,1.0\n")
    assert trunks.progress_run("tiny") == run  # notebook 04 plots the machine's own run first
    shutil.rmtree(tiny_trunk / "runs")  # a fresh clone has only trunks/
    assert trunks.progress_run("tiny") == stored.parent
    assert trunks.restore("tiny") and not trunks.restore("tiny")
    result = trunks.grow("tiny", minutes=0, steps=5)
    assert result["step"] == 5
    segments = result["history"]["segments"]
    assert [(s["from_step"], s["to_step"]) for s in segments] == [(0, 3), (3, 5)]
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert {float(s["step"]) for s in state["opt"]["state"].values()} == {5.0}  # Adam continued, not reset


def test_cooldown_branches_with_the_trunks_adam_and_decays(tiny_trunk):
    trunks.grow("tiny", minutes=0, steps=4)
    result = trunks.cooldown("tiny", lmbda=0.05, steps=3)
    cool = tiny_trunk / "runs" / "trunk" / "tiny-cool-mse-0.05"
    rates = [float(r.split(",")[7]) for r in (cool / "train.csv").read_text().splitlines()[1:]]
    assert rates == sorted(rates, reverse=True) and rates[-1] < rates[0] / 2  # linear: 3, 2, 1 (x 1e-4)
    assert result["history"]["parent"]["step"] == 4 and result["history"]["totals"]["steps"] == 7
    assert result["finished"]


def test_unknown_trunk_is_refused(tiny_trunk):
    from gaacnn.errors import GaacnnError

    with pytest.raises(GaacnnError, match="unknown trunk"):
        trunks.store("nope")


def test_crops_held_as_tensors_are_the_same_crops():
    from gaacnn.data import RandomCrops, dataset_paths

    paths = dataset_paths("cid22-valid")[:3]
    host, held = RandomCrops(paths, 64, seed=5), RandomCrops(paths, 64, seed=5, device="cpu")
    for i in range(20):
        assert torch.equal(host[i], held[i])


def test_gpu_continuation_rehearsed_on_the_cpu(tiny_trunk):
    """What ``make gpu-continue`` does, with a tiny budget: a larger batch, a scaled learning rate
    re-warmed from where the trunk stands, images held on the device; the trunk resumes, not restarts."""
    trunks.grow("tiny", minutes=0, steps=3)
    gpu = {**trunks.GPU_CONTINUE, "device": "cpu", "batch": 4, "rewarm": 2}
    result = trunks.grow("tiny", minutes=0, steps=6, **gpu)
    assert result["step"] == 6
    rows = (tiny_trunk / "runs" / "trunk" / "tiny" / "train.csv").read_text().splitlines()[1:]
    rates = [float(r.split(",")[7]) for r in rows]
    assert rates[3] == pytest.approx(gpu["lr"] / 2, rel=1e-2) and rates[4] == pytest.approx(gpu["lr"], rel=1e-2)
    state = torch.load(tiny_trunk / "runs" / "trunk" / "tiny" / "checkpoint.pt", weights_only=False)
    assert {float(s["step"]) for s in state["opt"]["state"].values()} == {6.0}


def test_grow_until_a_step_and_each_segment_records_its_batch(tiny_trunk):
    """``grow --until``: the control matches a GPU stretch step for step; the history says at which batch
    each step ran, which the ablation's pairing of equal steps must compare too."""
    trunks.main(["grow", "tiny", "--minutes", "0", "--until", "3"])
    trunks.grow("tiny", minutes=0, steps=5, **{**trunks.GPU_CONTINUE, "device": "cpu", "batch": 4, "rewarm": 2})
    state = torch.load(tiny_trunk / "runs" / "trunk" / "tiny" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 5 and trunks.steps_by_batch(state["history"]) == {2: 3, 4: 2}
    assert trunks.describe("tiny").endswith("(batch 2: 3 steps, batch 4: 2 steps)")


def test_shipping_a_cooldown_reads_its_history(tiny_trunk, monkeypatch):
    from gaacnn import manifest, release

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tiny_trunk / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tiny_trunk / "weights" / "manifest.json")
    trunks.grow("tiny", minutes=0, steps=4)
    trunks.cooldown("tiny", lmbda=0.05, steps=2)
    entry = release.ship(tiny_trunk / "runs" / "trunk" / "tiny-cool-mse-0.05", "tiny-cool", "tiny test")
    assert entry["steps"] == 6 and entry["cpu_hours"] > 0 and entry["gpu_hours"] == 0
    assert entry["lineage"] == [str(tiny_trunk / "runs" / "trunk" / n) for n in ("tiny", "tiny-cool-mse-0.05")]


def test_a_trunk_taken_out_of_the_tree_is_restored_from_git_history(tiny_trunk):
    """Stored, committed, then removed from the tree (to keep it small): a fresh clone still continues it."""
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tiny_trunk, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    trunks.grow("tiny", minutes=0, steps=3)
    trunks.store("tiny")
    git("add", "trunks")
    git("commit", "-qm", "trunk at step 3")
    git("rm", "-rq", "trunks")
    git("commit", "-qm", "trunk out of the tree")
    shutil.rmtree(tiny_trunk / "runs")
    assert not (tiny_trunk / "trunks").exists() and trunks.restore("tiny")
    assert trunks.grow("tiny", minutes=0, steps=4)["step"] == 4


def test_quick_profile_cools_down_from_the_current_trunk_and_ships(tiny_trunk, monkeypatch):
    """``make train PROFILE=quick``: every ladder lambda gets a cooldown of the trunk's current step,
    shipped at the ladder's precision; after the trunk grows, a rerun redoes the stale cooldowns."""
    from gaacnn import manifest

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tiny_trunk / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tiny_trunk / "weights" / "manifest.json")
    monkeypatch.setattr(trunks, "LADDERS", {"tiny ladder": {"trunk": "tiny", "prefix": "tiny-mse", "metric": "mse",
                                                            "lambdas": (0.01, 0.05), "steps": 2, "precision": "int8"}})
    trunks.grow("tiny", minutes=0, steps=3)
    first = trunks.quick()
    assert [e["name"] for e in first] == ["tiny-mse-0.01", "tiny-mse-0.05"]
    assert {e["precision"] for e in first} == {"int8"} and {e["steps"] for e in first} == {5}
    assert trunks.branch_step(trunks.cooldown_dir("tiny", "mse", 0.05)) == 3
    trunks.grow("tiny", minutes=0, steps=4)
    again = trunks.quick()
    assert {e["steps"] for e in again} == {6} and trunks.branch_step(trunks.cooldown_dir("tiny", "mse", 0.01)) == 4
    assert sorted(e["name"] for e in manifest.entries()) == ["tiny-mse-0.01", "tiny-mse-0.05"]


def test_a_ladder_gives_each_lambda_its_own_cooldown_length(tiny_trunk, monkeypatch):
    """A far lambda (the top) may cool down longer than the rest; changing a length redoes only that
    cooldown, and a length per lambda must match the lambdas."""
    from gaacnn import manifest

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tiny_trunk / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tiny_trunk / "weights" / "manifest.json")
    ladder = {"trunk": "tiny", "prefix": "tiny-mse", "metric": "mse", "lambdas": (0.01, 0.05), "steps": (1, 3),
              "precision": "int8"}
    monkeypatch.setattr(trunks, "LADDERS", {"tiny ladder": ladder})
    trunks.grow("tiny", minutes=0, steps=2)
    assert {e["name"]: e["steps"] for e in trunks.quick()} == {"tiny-mse-0.01": 3, "tiny-mse-0.05": 5}
    low = trunks.cooldown_dir("tiny", "mse", 0.01) / "checkpoint.pt"
    kept = low.stat().st_mtime_ns
    ladder["steps"] = (1, 2)
    assert {e["name"]: e["steps"] for e in trunks.quick()} == {"tiny-mse-0.01": 3, "tiny-mse-0.05": 4}
    assert low.stat().st_mtime_ns == kept  # same length, same branch: not redone
    with pytest.raises(trunks.GaacnnError, match="3 cooldown lengths for 2 lambdas"):
        trunks.cooldown_steps({**ladder, "steps": (1, 2, 3)})


def test_cooled_points_are_the_cooldowns_at_the_trunks_lambda_and_are_drawn(tiny_trunk, tmp_path):
    """Notebook 04's diamonds: a cooldown at the trunk's own lambda, wherever it was moved under runs/,
    counts with the step it branched from; one at another lambda does not."""
    from gaacnn import figures

    trunks.grow("tiny", minutes=0, steps=2, val_every=2)  # the trunk's own curve, under the diamonds
    trunks.cooldown("tiny", lmbda=0.01, steps=2)
    trunks.cooldown("tiny", lmbda=0.05, steps=1)
    moved = tiny_trunk / "runs" / "old" / "tiny-cool-mse-0.01"
    moved.parent.mkdir()
    trunks.cooldown_dir("tiny", "mse", 0.01).rename(moved)
    trunks.grow("tiny", minutes=0, steps=3)
    trunks.cooldown("tiny", lmbda=0.01, steps=1)
    points = trunks.cooled_points("tiny")
    assert [(p["trunk_step"], p["steps"], p["run"]) for p in points] == [
        (2, 2, "runs/old/tiny-cool-mse-0.01"), (3, 1, "runs/trunk/tiny-cool-mse-0.01")]
    assert all(p["bpp"] > 0 and p["psnr"] > 0 for p in points)
    fig = figures.plot_trunk_progress({"tiny": tiny_trunk / "runs" / "trunk" / "tiny"}, tmp_path / "p.png",
                                      {"tiny": points})
    psnr_axis = fig.axes[0]
    assert [list(line.get_ydata()) for line in psnr_axis.lines if line.get_marker() == "D"] == [
        [p["psnr"] for p in points]]


def test_gpu_stretches_merge_adjacent_gpu_segments_and_skip_the_cpu():
    """Notebook 04 marks where a trunk trained on a GPU: its CPU-hours axis does not move there."""
    from gaacnn import figures

    cpu = {"kind": "cpu", "hardware": "cpu", "workers": 1}
    gpu = {"kind": "cuda", "hardware": "1 x H200", "workers": 1}
    segments = [{**cpu, "from_step": 0, "to_step": 10, "seconds": 36.0},
                {**gpu, "from_step": 10, "to_step": 30, "seconds": 6.0},
                {**gpu, "from_step": 30, "to_step": 40, "seconds": 4.0},
                {**cpu, "from_step": 40, "to_step": 50, "seconds": 36.0},
                {**gpu, "from_step": 50, "to_step": 60, "seconds": 2.0}]
    assert [(g["from_step"], g["to_step"], g["seconds"]) for g in figures.gpu_stretches(segments)] == [
        (10, 40, 10.0), (50, 60, 2.0)]
    assert list(figures.cpu_hours_at(np.array([10.0, 40.0, 50.0]), segments)) == [0.01, 0.01, 0.02]


def test_a_widened_trunk_is_drawn_on_from_its_source_trunks_hours():
    """Notebook 04: a trunk begun as another one widened starts at that trunk's CPU-hours where it branched;
    one begun from shipped weights (no recorded segments) starts at 0."""
    from gaacnn import figures

    cpu = {"kind": "cpu", "hardware": "cpu", "workers": 2}
    source = {"run": "runs/trunk/small", "step": 20, "parent": {"run": "weights/x.pth", "step": 5, "segments": []},
              "segments": [{**cpu, "from_step": 0, "to_step": 40, "seconds": 3600.0}]}
    assert figures.branched_hours({"parent": source, "segments": []}) == 1.0  # half of its 2 core-hours
    assert figures.branched_hours(source) == 0.0
    assert figures.branched_hours({}) == 0.0


def test_cooled_points_are_recorded_in_git_and_outlive_runs(tiny_trunk):
    """runs/ goes with the machine; the record under benchmarks/results keeps notebook 04's diamonds,
    with the trunk's CPU-hours where each branched. A cooldown at another patch is not the trunk's recipe."""
    trunks.grow("tiny", minutes=0, steps=2)
    trunks.cooldown("tiny", lmbda=0.01, steps=1)  # records itself
    trunks.branch("tiny", tiny_trunk / "runs" / "trunk" / "tiny" / "checkpoint.pt",
                  tiny_trunk / "runs" / "patch" / "tiny-128px", 0.01, 1, threads=1, patch=128, batch=1)
    assert trunks.record_cooled() == trunks.cooled_log()
    before = trunks.cooled_points("tiny")
    assert [(p["trunk_step"], p["steps"]) for p in before] == [(2, 1)] and before[0]["trunk_cpu_hours"] > 0
    shutil.rmtree(tiny_trunk / "runs")  # a new machine
    after = trunks.cooled_points("tiny")
    assert [(p["trunk_step"], p["steps"], p["run"]) for p in after] == [(2, 1, "runs/trunk/tiny-cool-mse-0.01")]
    assert after[0]["loss"] == pytest.approx(before[0]["loss"], abs=1e-5)
    assert after[0]["trunk_cpu_hours"] == pytest.approx(before[0]["trunk_cpu_hours"], abs=1e-4)


def test_a_ladder_cools_down_on_its_own_patch(tiny_trunk, monkeypatch):
    """A ladder may cool down on larger crops than its trunk grows on (the same pixels a step): its
    cooldowns train at the ladder's batch and patch, and changing them redoes the cooldowns."""
    import json

    from gaacnn import manifest

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tiny_trunk / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tiny_trunk / "weights" / "manifest.json")
    ladder = {"trunk": "tiny", "prefix": "tiny-mse", "metric": "mse", "lambdas": (0.01,), "steps": 1,
              "precision": "int8"}
    monkeypatch.setattr(trunks, "LADDERS", {"tiny ladder": ladder})
    trunks.grow("tiny", minutes=0, steps=2)
    config = trunks.cooldown_dir("tiny", "mse", 0.01) / "config.json"
    assert trunks.cooldown_crops(ladder) == (2, 64)  # the trunk's
    trunks.quick()
    assert (json.loads(config.read_text())["batch"], json.loads(config.read_text())["patch"]) == (2, 64)
    ladder.update(batch=1, patch=128)
    trunks.quick()
    assert (json.loads(config.read_text())["batch"], json.loads(config.read_text())["patch"]) == (1, 128)


def test_a_ladder_from_a_gpu_continued_trunk_ships_only_as_a_gpu_family(tiny_trunk, monkeypatch):
    """The ablation pairs equal steps at equal batch: a cooldown whose trunk ran steps on a GPU (8x the
    batch) ships only under a family named 'GPU', and a CPU-only one only under a family that is not."""
    from gaacnn import manifest

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tiny_trunk / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tiny_trunk / "weights" / "manifest.json")
    ladder = {"trunk": "tiny", "prefix": "tiny-mse", "metric": "mse", "lambdas": (0.01,), "steps": 1,
              "precision": "int8"}
    monkeypatch.setattr(trunks, "LADDERS", {"tiny mse": ladder, "tiny GPU mse": {**ladder, "prefix": "tiny-gpu-mse"}})
    trunks.grow("tiny", minutes=0, steps=2)
    trunks.cooldown("tiny", lmbda=0.01, steps=1)
    with pytest.raises(trunks.GaacnnError, match="on CPUs only"):
        trunks.ship_ladder("tiny GPU mse")
    assert [e["name"] for e in trunks.ship_ladder("tiny mse")] == ["tiny-mse-0.01"]

    ckpt = tiny_trunk / "runs" / "trunk" / "tiny" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=False)
    state["history"]["segments"][0]["kind"] = "cuda"  # as if its first steps had run on a GPU
    torch.save(state, ckpt)
    trunks.grow("tiny", minutes=0, steps=3)
    shutil.rmtree(trunks.cooldown_dir("tiny", "mse", 0.01))
    trunks.cooldown("tiny", lmbda=0.01, steps=1)
    with pytest.raises(trunks.GaacnnError, match="partly on a GPU"):
        trunks.ship_ladder("tiny mse")
    shipped = trunks.ship_ladder("tiny GPU mse")
    assert shipped[0]["name"] == "tiny-gpu-mse-0.01" and shipped[0]["gpu_hours"] > 0
    assert sorted(e["name"] for e in manifest.entries()) == ["tiny-gpu-mse-0.01", "tiny-mse-0.01"]
