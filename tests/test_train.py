"""Training: resume after a kill, NaN guard, DDP equivalence (gloo, 2 processes), weights I/O."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gaacnn import train as train_mod
from gaacnn.train import TrainConfig, TrainingDiverged, train
from gaacnn.weights import load_model, load_state, save_weights

pytestmark = pytest.mark.skipif(
    __import__("gaacnn.data", fromlist=["mirror_root"]).mirror_root() is None, reason="needs the data mirror"
)

ARGS = ["--preset", "tiny", "--batch", "4", "--patch", "64", "--train-set", "cid22-valid", "--val-images", "2",
        "--log-every", "1", "--no-progress", "--seed", "3"]


def _cfg(out, **kw):
    base = dict(out=str(out), preset="tiny", batch=4, patch=64, train_set="cid22-valid", val_images=2,
                val_crop=64, log_every=1, seed=3, val_every=0)
    base.update(kw)
    return TrainConfig(**base)


def _losses(path):
    with open(path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    # one thread everywhere: multi-threaded CPU kernels may reduce in a different order between runs
    ref = train(_cfg(tmp_path / "ref", steps=10, ckpt_every=2, threads=1), progress=False)
    cmd = [sys.executable, "-m", "gaacnn", "train", "--out", str(tmp_path / "run"), "--steps", "10",
           "--ckpt-every", "2", "--val-every", "0", "--threads", "1", *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=False)["step"] >= 4:
                    break
            except Exception:
                pass
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 4 <= killed_at < 10, "the run was not killed mid-way"
    resumed = train(_cfg(tmp_path / "run", steps=10, ckpt_every=2, threads=1), resume=True, progress=False)
    assert resumed["step"] == 10
    # Tolerance: the two processes' CPU kernels may round differently (measured: up to 2.2e-6 on the
    # coordinate-attention biases, in about half the runs); one lost or repeated Adam step moves
    # parameters by about the learning rate, 1e-4.
    for (k, a), b in zip(ref["model"].state_dict().items(), resumed["model"].state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-5), k
    assert _losses(tmp_path / "run" / "train.csv")[10] == pytest.approx(_losses(tmp_path / "ref" / "train.csv")[10],
                                                                         rel=1e-4)


def test_nan_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    real = train_mod.rate_distortion
    calls = {"n": 0}

    def poisoned(*a, **k):
        terms = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 5:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(train_mod, "rate_distortion", poisoned)
    with pytest.raises(TrainingDiverged, match="step 4.*checkpoint"):
        train(_cfg(tmp_path, steps=8, ckpt_every=2), progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_ddp_two_processes_match_one(tmp_path):
    common = ["--steps", "3", "--val-every", "0", "--model-mode", "eval", "--device", "cpu", *ARGS]
    single = subprocess.run([sys.executable, "-m", "gaacnn", "train", "--out", str(tmp_path / "one"), *common],
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-2000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "gaacnn", "train", "--out", str(tmp_path / "two"), *common],
                         capture_output=True, text=True, env=env)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, two = _losses(tmp_path / "one" / "train.csv"), _losses(tmp_path / "two" / "train.csv")
    assert sorted(one) == sorted(two) == [1, 2, 3]
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4), step


def test_weights_round_trip_and_checksum(tmp_path):
    from gaacnn import GAACNN
    from gaacnn.weights import WeightsError

    torch.manual_seed(0)
    model = GAACNN("tiny").eval()
    sha = save_weights(model, tmp_path / "w.pth", meta={"steps": 1})
    loaded = load_model(tmp_path / "w.pth", sha256=sha)
    assert loaded.meta == {"steps": 1}
    state = load_state(tmp_path / "w.pth")
    assert all(v.dtype != torch.float16 for v in state.values())
    with pytest.raises(WeightsError, match="SHA-256"):
        load_model(tmp_path / "w.pth", sha256="0" * 64)


def test_second_writer_to_a_run_folder_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "LOCK").write_text(str(sleeper.pid))
        with pytest.raises(train_mod.GaacnnError, match=f"process {sleeper.pid}"):
            train(_cfg(tmp_path / "run", steps=1), progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone: the folder is free again, and the lock is released at the end
    assert train(_cfg(tmp_path / "run", steps=1), progress=False)["step"] == 1
    assert not (tmp_path / "run" / "LOCK").exists()


def test_ship_counts_a_chain_of_fine_tunes(tmp_path, monkeypatch):
    from gaacnn import manifest, release

    base = train(_cfg(tmp_path / "base", steps=2, threads=1), progress=False)
    assert base["step"] == 2
    train(_cfg(tmp_path / "ft1", steps=1, threads=1, lmbda=0.005, init=str(tmp_path / "base" / "checkpoint.pt")),
          progress=False)
    train(_cfg(tmp_path / "ft2", steps=1, threads=1, lmbda=0.002, init=str(tmp_path / "ft1" / "checkpoint.pt")),
          progress=False)
    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "weights" / "manifest.json")
    entry = release.ship(tmp_path / "ft2", "tiny-ft2", "tiny test")
    assert entry["steps"] == 4 and entry["finetune_steps"] == 1
    assert entry["lineage"] == [str(tmp_path / n) for n in ("base", "ft1", "ft2")]
    assert [e["name"] for e in manifest.entries()] == ["tiny-ft2"]
    model = manifest.load("tiny-ft2")
    assert manifest.find("tiny-ft2")["fingerprint"] == release.weights_fingerprint(model).hex()


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_weights_leave_out_the_coder_tables_and_rebuild_them(tmp_path, arch):
    from gaacnn.codec import encode
    from gaacnn.registry import build_model
    from gaacnn.weights import DERIVED

    torch.manual_seed(0)
    model = (build_model("gaacnn", "tiny") if arch == "gaacnn" else build_model("mshp", N=16, M=24)).eval()
    model.update(force=True)
    save_weights(model, tmp_path / "w.pth", precision="float32")
    stored = torch.load(tmp_path / "w.pth", weights_only=False)["state_dict"]
    assert stored and not [k for k in stored if k.endswith(DERIVED)]
    loaded = load_model(tmp_path / "w.pth")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.rand(1, 3, 64, 64)
    assert encode(model, x) == encode(loaded, x)


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_fine_tune_from_half_weights_keeps_the_likelihood_bound(tmp_path, arch):
    """Half precision rounds CompressAI's likelihood bound (1e-9) to 0: weights files leave such
    constants out, and a fine-tune takes the model's own even from an older file that holds them."""
    from gaacnn.registry import build_model
    from gaacnn.weights import CONSTANTS, load_into

    def build():
        return build_model("gaacnn", "tiny") if arch == "gaacnn" else build_model("mshp", N=16, M=24)

    torch.manual_seed(0)
    model = build()
    save_weights(model, tmp_path / "w.pth", precision="float16")
    obj = torch.load(tmp_path / "w.pth", weights_only=False)
    assert not [k for k in obj["state_dict"] if k.endswith(CONSTANTS)]
    # an older file: constants stored in half precision, the likelihood bounds rounded to zero
    obj["state_dict"].update({k: v.half() for k, v in model.state_dict().items() if k.endswith(CONSTANTS)})
    bounds = [k for k in obj["state_dict"] if k.endswith("likelihood_lower_bound.bound")]
    assert bounds and all(float(obj["state_dict"][k]) == 0.0 for k in bounds)
    torch.save(obj, tmp_path / "old.pth")
    tuned = build()
    load_into(tuned, tmp_path / "old.pth")
    for k in bounds:
        assert float(tuned.state_dict()[k]) == pytest.approx(1e-9)
    # and training from it: the rate of a far-off latent stays finite
    tuned.train()
    out = tuned(torch.rand(1, 3, 64, 64) * 40)
    assert all(torch.isfinite(torch.log2(lk)).all() for lk in out["likelihoods"].values())


def test_a_timed_run_decays_and_finishes_within_its_wall_time(tmp_path):
    """``max_minutes``: the step schedule follows the wall-time budget, and the run ends finished."""
    from gaacnn.release import finished, slim

    result = train(_cfg(tmp_path / "run", steps=10**6, max_minutes=0.1, threads=1, warmup=0, decay=0.5),
                   progress=False)
    assert result["finished"] and 0 < result["step"] < 10**6
    rates = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "run" / "train.csv"))]
    assert rates[0] == pytest.approx(3e-4) and rates[-1] == min(rates) < 1.5e-4  # decayed by the wall clock
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert finished(state) and state["step"] == result["step"]
    # shrunk for copying off a GPU machine: model only, in half precision, still loadable
    slim(tmp_path / "run")
    small = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert "opt" not in small and all(v.dtype != torch.float32 for v in small["model"].values())
    assert load_model(tmp_path / "run" / "checkpoint.pt") is not None


def test_slim_refuses_an_unfinished_run(tmp_path):
    from gaacnn.release import slim

    train(_cfg(tmp_path / "run", steps=3, threads=1, ckpt_every=1, max_minutes=0), progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    state["finished"], state["step"] = False, 1
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(SystemExit, match="not finished"):
        slim(tmp_path / "run")


def test_lineage_of_a_fine_tune_from_shipped_weights(tmp_path, monkeypatch):
    """A fine-tune started from a weights file counts the steps and runs that file's manifest entry lists."""
    from gaacnn import manifest, release

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "weights" / "manifest.json")
    train(_cfg(tmp_path / "base", steps=2, threads=1), progress=False)
    release.ship(tmp_path / "base", "tiny-base", "tiny test")
    train(_cfg(tmp_path / "ft", steps=1, threads=1, lmbda=0.005, init=str(tmp_path / "weights" / "tiny-base.pth")),
          progress=False)
    entry = release.ship(tmp_path / "ft", "tiny-ft", "tiny test")
    assert entry["steps"] == 3 and entry["lineage"] == [str(tmp_path / "base"), str(tmp_path / "ft")]
    # taking the base out of the manifest deletes its file and logs, and keeps the fine-tune
    manifest.remove("tiny-base")
    assert [e["name"] for e in manifest.entries()] == ["tiny-ft"]
    assert not list((tmp_path / "weights").rglob("tiny-base*"))


def test_lineage_when_a_later_stage_shipped_over_the_start_file(tmp_path, monkeypatch):
    """ft1 starts from the shipped base and ships under the same name; ft2 starts from ft1's run
    folder: the file ft1 started from now holds ft1 itself, whose steps count once."""
    from gaacnn import manifest, release

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "weights" / "manifest.json")
    train(_cfg(tmp_path / "base", steps=2, threads=1), progress=False)
    release.ship(tmp_path / "base", "tiny", "tiny test")
    train(_cfg(tmp_path / "ft1", steps=1, threads=1, init=str(tmp_path / "weights" / "tiny.pth")), progress=False)
    assert release.ship(tmp_path / "ft1", "tiny", "tiny test")["steps"] == 3
    train(_cfg(tmp_path / "ft2", steps=1, threads=1, init=str(tmp_path / "ft1" / "checkpoint.pt")), progress=False)
    entry = release.ship(tmp_path / "ft2", "tiny", "tiny test")
    assert entry["steps"] == 4 and entry["lineage"] == [str(tmp_path / n) for n in ("base", "ft1", "ft2")]


def test_lineage_of_a_branch_when_the_top_shipped_on(tmp_path, monkeypatch):
    """ft1 starts from the shipped file and ft2 from ft1, shipped over it (the top trains on); ft3
    branches off ft1 (a refine chain from an earlier round): it counts base, ft1 and itself, not ft2."""
    from gaacnn import manifest, release

    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "weights" / "manifest.json")
    train(_cfg(tmp_path / "base", steps=2, threads=1), progress=False)
    release.ship(tmp_path / "base", "tiny", "tiny test")
    train(_cfg(tmp_path / "ft1", steps=1, threads=1, init=str(tmp_path / "weights" / "tiny.pth")), progress=False)
    train(_cfg(tmp_path / "ft2", steps=3, threads=1, init=str(tmp_path / "ft1" / "checkpoint.pt")), progress=False)
    assert release.ship(tmp_path / "ft2", "tiny", "tiny test")["steps"] == 6
    train(_cfg(tmp_path / "ft3", steps=1, threads=1, lmbda=0.005, init=str(tmp_path / "ft1" / "checkpoint.pt")),
          progress=False)
    entry = release.ship(tmp_path / "ft3", "tiny-branch", "tiny test")
    assert entry["steps"] == 4 and entry["lineage"] == [str(tmp_path / n) for n in ("base", "ft1", "ft3")]


@pytest.mark.parametrize("arch", ["mshp", "gaacnn"])
def test_loop_matches_a_plain_compressai_training_loop(tmp_path, arch):
    """Our loop (LR schedule, aux loss, clipping, data order) takes the same steps as CompressAI's
    example loop written out by hand with its RateDistortionLoss, on the same patches and init."""
    from compressai.losses import RateDistortionLoss

    from gaacnn.data import RandomCrops, dataset_paths
    from gaacnn.registry import build_model

    steps = 12
    cfg = _cfg(tmp_path / "ours", arch=arch, steps=steps, lmbda=0.013, milestones=(0.5,), warmup=0, decay=0.0,
               threads=1)
    train(cfg, progress=False)
    ours = _losses(tmp_path / "ours" / "train.csv")

    torch.manual_seed(cfg.seed)
    model = build_model(arch, cfg.preset).train()
    params = dict(model.named_parameters())
    opt = torch.optim.Adam([p for n, p in params.items() if not n.endswith(".quantiles")], lr=cfg.lr)
    aux_opt = torch.optim.Adam([p for n, p in params.items() if n.endswith(".quantiles")], lr=cfg.aux_lr)
    criterion = RateDistortionLoss(lmbda=cfg.lmbda)
    data = RandomCrops(dataset_paths(cfg.train_set), cfg.patch, cfg.seed)
    plain = {}
    for step in range(steps):
        if step == steps // 2:  # the one milestone: lr / 10
            opt.param_groups[0]["lr"] = cfg.lr / 10
        x = torch.stack([data[step * cfg.batch + j] for j in range(cfg.batch)])
        opt.zero_grad()  # CompressAI's examples/train.py clears both optimizers first, so the clipping
        aux_opt.zero_grad()  # below sees no quantile gradients
        loss = criterion(model(x), x)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        model.aux_loss().backward()
        aux_opt.step()
        plain[step + 1] = float(loss)
    assert sorted(ours) == sorted(plain)
    for step in plain:
        assert ours[step] == pytest.approx(plain[step], rel=1e-4), step
    assert plain[steps] != pytest.approx(plain[1], rel=1e-3)  # it did train


def test_clipping_sees_the_main_gradients_only(tmp_path, monkeypatch):
    """The quantiles' gradients (left by the previous aux step) must not enter the main clipping:
    they would shrink the main gradient by a different factor at every step."""
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        seen.append({id(p) for p in params})
        return real(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    model = train(_cfg(tmp_path / "run", steps=3, threads=1), progress=False)["model"]
    quantiles = {id(p) for n, p in model.named_parameters() if n.endswith(".quantiles")}
    main = {id(p) for p in train_mod.main_parameters(model)}
    assert quantiles and len(seen) == 3
    assert all(ids == main for ids in seen)


def test_schedule_warms_up_holds_and_decays_only_at_the_end():
    cfg = TrainConfig(steps=1000, lr=3e-4, warmup=100, decay=0.2)
    assert train_mod.lr_at(cfg, 0) == pytest.approx(3e-6)
    assert train_mod.lr_at(cfg, 99) == pytest.approx(3e-4)
    assert train_mod.lr_at(cfg, 500) == train_mod.lr_at(cfg, 799) == pytest.approx(3e-4)
    assert train_mod.lr_at(cfg, 900) == pytest.approx(1.5e-4)
    assert train_mod.lr_at(cfg, 1000) == pytest.approx(3e-6)
    trunk = TrainConfig(steps=1000, lr=3e-4, warmup=0, decay=0.0)
    assert {train_mod.lr_at(trunk, s) for s in (0, 999, 5000)} == {3e-4}


def test_trunk_grows_and_a_cooldown_continues_its_adam_and_history(tmp_path):
    """A trunk resumed with a larger budget keeps its optimizer; a cooldown from its checkpoint takes
    the trunk's Adam moments (not a fresh Adam) and records the trunk as its parent in its totals."""
    trunk = tmp_path / "trunk"
    train(_cfg(trunk, steps=3, threads=1, warmup=0, decay=0.0), progress=False)
    train(_cfg(trunk, steps=5, threads=1, warmup=0, decay=0.0), resume=True, progress=False)
    state = torch.load(trunk / "checkpoint.pt", weights_only=False)
    adam_steps = {float(v["step"]) for v in state["opt"]["state"].values()}
    assert adam_steps == {5.0} and state["history"]["totals"]["steps"] == 5
    assert [(s["from_step"], s["to_step"]) for s in state["history"]["segments"]] == [(0, 3), (3, 5)]

    cool = train(_cfg(tmp_path / "cool", steps=2, threads=1, warmup=0, decay=1.0, lmbda=0.005,
                      init=str(trunk / "checkpoint.pt"), init_optimizer=True), progress=False)
    cstate = torch.load(tmp_path / "cool" / "checkpoint.pt", weights_only=False)
    assert {float(v["step"]) for v in cstate["opt"]["state"].values()} == {7.0}
    history = cool["history"]
    assert history["parent"]["run"] == str(trunk) and history["parent"]["step"] == 5
    assert history["totals"]["steps"] == 7
    # The trunk's hours are in the cooldown's totals (a two-step cooldown alone can take less than the
    # trunk's five steps did, so without the parent's share its total would fall below the trunk's).
    assert history["totals"]["cpu_hours"] >= state["history"]["totals"]["cpu_hours"] > 0


def test_a_run_resumes_after_its_init_file_is_gone(tmp_path):
    """A trunk outlives the shipped file it started from (a ladder replaced it): resuming reads only
    its own checkpoint."""
    train(_cfg(tmp_path / "base", steps=1, threads=1), progress=False)
    start = tmp_path / "start.pt"
    (tmp_path / "base" / "checkpoint.pt").rename(start)
    train(_cfg(tmp_path / "run", steps=1, threads=1, init=str(start)), progress=False)
    start.unlink()
    assert train(_cfg(tmp_path / "run", steps=2, threads=1, init=str(start)), resume=True,
                 progress=False)["step"] == 2


def test_a_run_without_validation_reads_no_validation_set(tmp_path):
    """A GPU continuation (val_every 0) has no validation set where it runs: it must not load one."""
    result = train(_cfg(tmp_path / "run", steps=1, threads=1, val_set="cid22-elsewhere"), progress=False)
    assert result["step"] == 1 and result["val"] == {}
