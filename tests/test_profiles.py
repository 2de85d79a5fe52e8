"""The training profiles (``gaacnn.profiles``) and the weights that ship from them."""

from __future__ import annotations

import pytest

from gaacnn import manifest
from gaacnn.profiles import (
    GPU_BATCH,
    GPU_MINUTES,
    GPU_MSE,
    GPU_STEPS,
    LONG_STEPS,
    QUICK_MSE,
    QUICK_SHIP,
    REFINE_FROM,
    RESEED_FROM,
    TOP_ROUNDS,
    gpu_jobs,
    long_lambda,
    quick_jobs,
    quick_tag,
    round_suffixes,
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
    last = round_suffixes()[-1]
    assert shipped and all(job.patch == 256 and job.out.endswith(("-p256", "-refine", last)) for job in shipped)
    by_out = {job.out: job for job in jobs}
    for job in shipped:
        parent = by_out[job.init.removesuffix("/checkpoint.pt")]
        if job.out.endswith("-refine"):  # checked by test_lower_lambdas_refine_down_from_the_top
            continue
        if job.out.endswith(last):  # the top lambda trains on from its 256-px stage, round after round
            assert job.lmbda == long_lambda(arch, job.metric) == max(QUICK_SHIP[(arch, job.metric)])
            for kind, suffix in reversed(list(zip(TOP_ROUNDS, round_suffixes()))):
                assert job.out.endswith(suffix) and (job.lmbda, job.metric, job.patch) == (
                    parent.lmbda, parent.metric, parent.patch)
                if kind == "gpu":
                    assert (job.batch, job.steps, job.max_minutes) == (GPU_BATCH, GPU_STEPS, GPU_MINUTES)
                else:
                    assert (job.batch, job.steps, job.max_minutes) == (2, LONG_STEPS, 0)
                job, parent = parent, by_out[parent.init.removesuffix("/checkpoint.pt")]
            assert job.out.endswith("-p256")
        assert (parent.metric, parent.lmbda, parent.patch) == (job.metric, job.lmbda, 128)
        assert shipped_name(job) == shipped_name(parent)
        assert job.batch * job.patch**2 == parent.batch * parent.patch**2  # same pixels per step
    assert sorted(job.metric for job in shipped if job.out.endswith(last)) == ["ms-ssim", "mse"]


def test_top_rounds_are_named_in_order_within_their_kind():
    assert round_suffixes(("cpu", "cpu", "gpu", "cpu", "gpu")) == ["-long", "-long2", "-gpu", "-long3", "-gpu2"]
    outs = [job.out for job in quick_jobs("gaacnn", top_rounds=("cpu",) * 3) if "-long" in job.out]
    assert len(outs) == 6 and len({shipped_name(TrainConfig(out=out)) for out in outs}) == 2
    assert shipped_name(TrainConfig(out="runs/quick/mshp-N64M96-mse-0.0483-gpu2")) == "mshp-N64M96-mse-0.0483"
    assert not [job for job in quick_jobs("gaacnn", long_steps=0) if "-long" in job.out or "-gpu" in job.out]
    assert not [job for job in quick_jobs("mshp", top_rounds=("cpu",)) if job.out.endswith("-gpu")]


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_later_top_rounds_draw_new_crops(arch):
    """Rounds before RESEED_FROM kept seed 0 (what they were trained with); from then on each round's
    crop seed differs from every earlier round's, so it does not replay their patches."""
    rounds = ("cpu",) * (RESEED_FROM + 1) + ("gpu",)
    for metric in ("mse", "ms-ssim"):
        tops = [job for job in quick_jobs(arch, top_rounds=rounds)
                if job.metric == metric and job.lmbda == long_lambda(arch, metric)][-len(rounds):]
        seeds = [job.seed for job in tops]
        assert seeds[:RESEED_FROM - 1] == [0] * (RESEED_FROM - 1)
        assert len(set(seeds[RESEED_FROM - 2:])) == len(rounds) - RESEED_FROM + 2


def test_the_manifest_ships_what_the_profiles_name():
    """Every run the quick profile ships is in weights/ with its metric and lambda, and nothing else is
    (so `make train` and `make paper-figures` agree on the model set). The GPU profile's 4,700-step
    models no longer ship: the CPU family dominates them, and they took 28 MB of the tracked tree."""
    from gaacnn.trunks import LADDERS, ladder_names

    entries = {e["name"]: e for e in manifest.entries()}
    from gaacnn.profiles import RETIRED

    # families a trunk's ladder ships instead, and families retired to keep the tree small
    replaced = {lad["family"] for lad in LADDERS.values()} | set(RETIRED)
    named = [job for arch in ("gaacnn", "mshp") for job in quick_jobs(arch) if ships(job)
             and f"{'GAACNN small' if arch == 'gaacnn' else 'control mshp'} {job.metric}" not in replaced]
    for job in named:
        entry = entries.get(shipped_name(job))
        assert entry is not None, f"{shipped_name(job)} is not shipped"
        assert (entry["metric"], entry["lambda"], entry["batch"], entry["patch"]) == (
            job.metric, job.lmbda, job.batch, job.patch)
    for name, (_, metric, lmbda) in ladder_names().items():
        assert (entries[name]["metric"], entries[name]["lambda"]) == (metric, lmbda), name
    assert set(entries) == {shipped_name(job) for job in named} | set(ladder_names())


@pytest.mark.parametrize("arch", ["gaacnn", "mshp"])
def test_lower_lambdas_refine_down_from_the_top(arch):
    """With refine steps, each metric's lower shipped lambdas form one chain, highest lambda first,
    from the top's round REFINE_FROM, at 256 px; every other run is one a shipped run starts from."""
    jobs = quick_jobs(arch, refine_steps=300)
    by_out = {job.out: job for job in jobs}
    for metric in ("mse", "ms-ssim"):
        chain = [job for job in jobs if job.metric == metric and job.out.endswith("-refine")]
        assert [job.lmbda for job in chain] == sorted(QUICK_SHIP[(arch, metric)], reverse=True)[1:]
        parent = by_out[chain[0].init.removesuffix("/checkpoint.pt")]
        assert parent.out.endswith(REFINE_FROM) and parent.lmbda == long_lambda(arch, metric)
        for job in chain:
            assert (job.steps, job.patch, job.batch, job.max_minutes) == (300, 256, 2, 0)
            assert by_out[job.init.removesuffix("/checkpoint.pt")] == parent
            assert shipped_name(job) == f"{quick_tag(arch)}-{metric}-{job.lmbda}"
            parent = job
    starts = {job.init.removesuffix("/checkpoint.pt") for job in jobs if job.init}
    ends = {job.out for job in jobs if job.out.endswith(("-refine", round_suffixes()[-1]))}
    assert {job.out for job in jobs} == starts | ends  # nothing trained that no shipped run needs
    assert not [job for job in jobs if job.out.endswith("-p256") and job.lmbda != long_lambda(arch, job.metric)]
    assert len(quick_jobs(arch, refine_steps=0)) > len(jobs)


@pytest.mark.parametrize("metric", ["mse", "ms-ssim"])
def test_gaacnn_and_the_control_ship_the_same_lambdas_below_the_top(metric):
    """The ablation compares like with like: below each family's top, GAACNN small and the control
    ship the same lambdas (the tops differ, each the lambda its rounds trained at)."""
    gaacnn, control = (sorted(QUICK_SHIP[(arch, metric)])[:-1] for arch in ("gaacnn", "mshp"))
    assert len(gaacnn) >= 3 and gaacnn == control
