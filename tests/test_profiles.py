"""The training profiles (``gaacnn.profiles``) and the weights that ship from them."""

from __future__ import annotations

import pytest

from gaacnn import manifest
from gaacnn.profiles import (
    GPU_BATCH,
    GPU_MINUTES,
    GPU_MSE,
    GPU_STEPS,
    LONG_ROUNDS,
    LONG_STEPS,
    QUICK_MSE,
    QUICK_SHIP,
    gpu_jobs,
    long_lambda,
    long_suffix,
    quick_jobs,
    shipped_name,
    ships,
)
from gaacnn.train import TrainConfig


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_quick_chains_start_from_earlier_runs(arch):
    jobs = quick_jobs(arch)
    base = jobs[0]
    assert base.init is None and base.lmbda == QUICK_MSE[-1] and base.metric == "mse"
    outs = [job.out for job in jobs]
    assert len(set(outs)) == len(outs)
    for i, job in enumerate(jobs[1:], 1):
        parent = job.init.removesuffix("/checkpoint.pt")
        assert parent in outs[:i], f"{job.out} starts from {parent}, not an earlier run"
    ms_ssim = [job for job in jobs if job.metric == "ms-ssim"]
    assert ms_ssim[0].init == f"{base.out}/checkpoint.pt"  # the MS-SSIM chain starts on the MSE base


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
@pytest.mark.parametrize("metric", ["mse", "ms-ssim"])
def test_at_least_four_trained_lambdas_ship_per_family(arch, metric):
    trained = {job.lmbda for job in quick_jobs(arch) if job.metric == metric}
    chosen = QUICK_SHIP[(arch, metric)]
    assert len(chosen) >= 4 and set(chosen) <= trained
    assert sum(ships(job) for job in quick_jobs(arch) if job.metric == metric) == len(chosen)


def test_gpu_jobs_fine_tune_the_shipped_quick_base():
    for arch in ("gaacnn", "mshp"):
        jobs = gpu_jobs(arch)
        assert [job.lmbda for job in jobs] == list(GPU_MSE)
        base = quick_jobs(arch)[0]
        assert {job.init for job in jobs} == {f"{base.out}/checkpoint.pt"}
        assert all(job.device == "auto" and job.max_minutes > 0 and job.batch == 16 for job in jobs)
    assert shipped_name(gpu_jobs("gaacnn")[2]) == "gaacnn-small-gpu-mse-0.013"
    assert shipped_name(quick_jobs("gaacnn")[0]) == "gaacnn-small-mse-0.0483"


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_what_ships_ends_on_256_px_patches(arch):
    jobs = quick_jobs(arch)
    shipped = [job for job in jobs if ships(job)]
    assert shipped and all(job.patch == 256 and job.out.endswith(("-p256", "-gpu")) for job in shipped)
    by_out = {job.out: job for job in jobs}
    for job in shipped:
        parent = by_out[job.init.removesuffix("/checkpoint.pt")]
        if job.out.endswith("-gpu"):  # the top lambda: a GPU round after the CPU rounds at 256 px
            assert job.lmbda == long_lambda(arch, job.metric) == max(QUICK_SHIP[(arch, job.metric)])
            assert (job.batch, job.steps, job.max_minutes, job.device) == (GPU_BATCH, GPU_STEPS, GPU_MINUTES, "auto")
            assert parent.out.endswith(long_suffix(LONG_ROUNDS)) and shipped_name(job) == shipped_name(parent)
            job, parent = parent, by_out[parent.init.removesuffix("/checkpoint.pt")]
            for round_ in range(LONG_ROUNDS, 0, -1):
                assert job.out.endswith(long_suffix(round_)) and job.steps == LONG_STEPS
                assert (parent.lmbda, parent.metric, parent.patch, parent.batch) == (
                    job.lmbda, job.metric, job.patch, job.batch)
                job, parent = parent, by_out[parent.init.removesuffix("/checkpoint.pt")]
            assert job.out.endswith("-p256")
        assert (parent.metric, parent.lmbda, parent.patch) == (job.metric, job.lmbda, 128)
        assert shipped_name(job) == shipped_name(parent)
        assert job.batch * job.patch**2 == parent.batch * parent.patch**2  # same pixels per step
    assert sorted(job.metric for job in shipped if job.out.endswith("-gpu")) == ["ms-ssim", "mse"]


def test_without_the_gpu_round_the_last_cpu_round_is_the_top():
    jobs = quick_jobs("mshp", gpu_round=False)
    assert not [job for job in jobs if job.out.endswith("-gpu")]
    assert jobs[-1].out.endswith(long_suffix(LONG_ROUNDS)) and jobs[-1].batch == 2 and not jobs[-1].max_minutes


def test_long_rounds_name_their_runs_in_order():
    assert [long_suffix(k) for k in (1, 2, 3)] == ["-long", "-long2", "-long3"]
    outs = [job.out for job in quick_jobs("gaacnn", long_rounds=3) if "-long" in job.out]
    assert len(outs) == 6 and len({shipped_name(TrainConfig(out=out)) for out in outs}) == 2
    assert not [job for job in quick_jobs("gaacnn", long_steps=0) if "-long" in job.out]


def test_the_manifest_ships_what_the_profiles_name():
    """Every run the quick and GPU profiles ship is in weights/ with its metric and lambda, and
    nothing else is (so `make train` and `make paper-figures` agree on the model set)."""
    entries = {e["name"]: e for e in manifest.entries()}
    named = [job for arch in ("gaacnn", "mshp") for job in quick_jobs(arch) if ships(job)]
    named += [job for arch in ("gaacnn", "mshp") for job in gpu_jobs(arch)]
    for job in named:
        entry = entries.get(shipped_name(job))
        assert entry is not None, f"{shipped_name(job)} is not shipped"
        assert (entry["metric"], entry["lambda"], entry["batch"], entry["patch"]) == (
            job.metric, job.lmbda, job.batch, job.patch)
    assert set(entries) == {shipped_name(job) for job in named}
