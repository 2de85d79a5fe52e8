"""The training profiles (``gaacnn.profiles``, ``gaacnn.trunks``) and the weights that ship from them."""

from __future__ import annotations

import pytest

from gaacnn import manifest
from gaacnn.profiles import PAPER_MSE, PAPER_MSSSIM, main, paper_jobs
from gaacnn.trunks import KEPT, LADDERS, TRUNKS, ladder_names


def test_the_manifest_ships_what_the_ladders_name():
    """Every shipped model is a ladder's cooldown with its metric and lambda, or belongs to a family kept
    for the ablation's pairing (KEPT), whose successor ladder then ships too; so `make train` and
    `make paper-figures` agree."""
    entries = {e["name"]: e for e in manifest.entries()}
    by_family: dict[str, set[str]] = {}
    for name, entry in entries.items():
        by_family.setdefault(entry["family"], set()).add(name)
    names = ladder_names()
    def from_trunk(name: str) -> bool:
        return any("/trunk/" in run for run in entries[name].get("lineage", []))

    for family, ladder in LADDERS.items():
        expected = {f"{ladder['prefix']}-{lm}" for lm in ladder["lambdas"]}
        assert by_family.get(family) == expected, family
        for name in expected:
            trunk, metric, lmbda = names[name]
            assert (entries[name]["metric"], entries[name]["lambda"]) == (metric, lmbda), name
            assert entries[name]["precision"] == ladder["precision"] and from_trunk(name), name
            assert (entries[name].get("gpu_hours", 0) > 0) == manifest.is_gpu_family(family), name
    for family, kept in KEPT.items():
        assert kept["successor"] in LADDERS and family not in LADDERS
        assert by_family.get(family) == {f"{kept['prefix']}-{lm}" for lm in kept["lambdas"]}, family
        assert all(entries[f"{kept['prefix']}-{lm}"]["metric"] == kept["metric"] for lm in kept["lambdas"])
    assert set(by_family) <= set(LADDERS) | set(KEPT)


def test_each_architecture_has_an_mse_and_an_ms_ssim_ladder_of_four():
    """Issue 20: four MSE and four MS-SSIM lambdas per architecture, every ladder a branch of an MSE
    trunk (MS-SSIM models start from MSE ones, as in the paper)."""
    seen = set()
    for ladder in LADDERS.values():
        trunk = TRUNKS[ladder["trunk"]]
        assert trunk.metric == "mse" and trunk.decay == 0 and len(ladder["lambdas"]) == 4
        assert list(ladder["lambdas"]) == sorted(ladder["lambdas"])
        seen.add((trunk.arch, ladder["metric"]))
    assert seen == {(a, m) for a in ("gaacnn", "mshp") for m in ("mse", "ms-ssim")}


def test_paper_ms_ssim_runs_start_from_the_mse_run_of_the_same_rank():
    jobs = paper_jobs()
    outs = {job.out for job in jobs}
    assert len(jobs) == len(PAPER_MSE) + len(PAPER_MSSSIM)
    for job in jobs:
        assert (job.batch, job.patch, job.steps) == (16, 256, 700_000)
        if job.metric == "ms-ssim":
            assert job.init.removesuffix("/checkpoint.pt") in outs and "paper-low-mse" in job.init


def test_quick_profile_lists_its_ladders(capsys):
    main(["list", "--profile", "quick"])
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(ladder_names()) == 16
    with pytest.raises(SystemExit):
        main(["train", "--profile", "gpu"])  # the GPU profile's family is gone: `make gpu-continue` instead
