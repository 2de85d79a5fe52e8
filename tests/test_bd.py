import json

import numpy as np
import pytest

from gaacnn import data
from gaacnn.bd import bd_quality, bd_rate, ms_ssim_db

RATE = np.array([0.2, 0.4, 0.7, 1.0, 1.5])
PSNR = np.array([27.0, 30.0, 32.5, 34.0, 36.0])


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_known_answers(method):
    assert bd_rate(RATE, PSNR, RATE * 0.8, PSNR, method) == pytest.approx(-20.0, abs=1e-9)
    assert bd_quality(RATE, PSNR, RATE, PSNR + 1, method) == pytest.approx(1.0, abs=1e-9)
    assert bd_rate(RATE, PSNR, RATE, PSNR, method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_swapping_anchor_and_test(method):
    assert bd_rate(RATE * 0.8, PSNR, RATE, PSNR, method) == pytest.approx(25.0, abs=1e-9)
    assert bd_quality(RATE, PSNR + 1, RATE, PSNR, method) == pytest.approx(-1.0, abs=1e-9)


def test_unsorted_input_gives_the_same_answer():
    perm = [3, 0, 4, 1, 2]
    for method in ("cubic", "pchip"):
        assert bd_rate(RATE[perm], PSNR[perm], RATE * 0.9, PSNR, method) == pytest.approx(
            bd_rate(RATE, PSNR, RATE * 0.9, PSNR, method))


def test_non_overlapping_curves_fail_clearly():
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(RATE, PSNR, RATE, PSNR + 20)
    with pytest.raises(ValueError, match="do not overlap"):
        bd_quality(RATE, PSNR, RATE * 100, PSNR)


def test_too_few_points_for_cubic():
    with pytest.raises(ValueError, match="at least 4"):
        bd_rate(RATE[:3], PSNR[:3], RATE[:3], PSNR[:3], "cubic")


def _table(rel):
    return json.loads(data.locate(rel).read_text())["results"]


@pytest.mark.skipif(data.mirror_root() is None, reason="needs the data mirror")
def test_published_gaacnn_against_published_jpeg():
    jpeg = _table("rd-anchors/compressai/kodak/jpeg.json")
    mse = _table("rd-anchors/gaacnn-paper/kodak_mse.json")
    msssim = _table("rd-anchors/gaacnn-paper/kodak_ms-ssim.json")
    bd_psnr = bd_quality(jpeg["bpp"], jpeg["psnr-rgb"], mse["bpp"], mse["psnr-rgb"])
    assert bd_psnr == pytest.approx(5.6, abs=0.15)  # paper: 5.687 dB
    bd_ms = bd_quality(jpeg["bpp"], ms_ssim_db(jpeg["ms-ssim-rgb"]), msssim["bpp"], msssim["ms-ssim-db-rgb"])
    assert bd_ms == pytest.approx(8.1, abs=0.2)  # paper: 8.203 dB


def test_ablation_table_against_the_control_family():
    from gaacnn import figures

    def curve(label, shift):
        return {"label": label, "source": "measured here", "produced_by": "x trained here", "bpp": list(RATE),
                "psnr-rgb": list(PSNR + shift), "ms-ssim-db-rgb": list(PSNR / 3 + shift)}

    codec = {**curve("JPEG (Pillow) (measured here)", -3), "produced_by": "jpeg qualities"}
    table, control = figures.ablation_table([curve("GAACNN small mse (measured here)", 1.0),
                                           curve("control mshp mse (measured here)", 0.0),
                                           curve("GAACNN small ms-ssim (measured here)", 2.0),
                                           curve("control mshp ms-ssim (measured here)", 0.5), codec,
                                           curve("GAACNN small GPU mse (measured here)", 3.0)])
    assert control is not None
    rows = table.set_index("method")
    # the GPU family has no GPU control: not compared with the CPU one
    assert list(rows.index) == ["GAACNN small mse (measured here)", "GAACNN small ms-ssim (measured here)"]
    mse, msssim = rows.loc["GAACNN small mse (measured here)"], rows.loc["GAACNN small ms-ssim (measured here)"]
    assert mse["anchor"] == "control mshp mse (measured here)" and mse["bd_psnr_db"] == pytest.approx(1.0)
    assert msssim["anchor"] == "control mshp ms-ssim (measured here)"
    assert msssim["bd_psnr_db_pchip"] == pytest.approx(1.5)


def test_best_family_ranks_cpu_and_gpu_families_against_the_anchor():
    """Notebook 06 sets the paper's BD-PSNR beside the best GAACNN MSE family, CPU-only or GPU-continued."""
    from gaacnn import figures

    def curve(label, shift, produced_by="x trained here"):
        return {"label": label, "source": "measured here", "produced_by": produced_by, "bpp": list(RATE),
                "psnr-rgb": list(PSNR + shift), "ms-ssim-db-rgb": list(PSNR / 3 + shift)}

    jpeg = curve("JPEG (Pillow) (measured here)", -3, "jpeg qualities")
    curves = [curve("GAACNN small mse (measured here, 10 steps)", 1.0), jpeg,
              curve("GAACNN small GPU mse (measured here, 12 steps)", 2.0),
              curve("GAACNN small ms-ssim (measured here)", 5.0), curve("control mshp mse (measured here)", 4.0)]
    assert figures.best_family(curves, jpeg, "GAACNN small", "mse")["label"].startswith("GAACNN small GPU mse")
    curves[2] = curve("GAACNN small GPU mse (measured here, 12 steps)", 0.5)
    assert figures.best_family(curves, jpeg, "GAACNN small", "mse")["label"].startswith("GAACNN small mse")
    assert figures.best_family(curves, jpeg, "GAACNN small", "ms-ssim")["label"].startswith("GAACNN small ms-ssim")
    assert figures.best_family(curves, jpeg, "GAACNN paper-low", "mse") is None


def test_pick_for_comparison_matches_bpp_across_families():
    from gaacnn.figures import pick_for_comparison

    entries = [{"name": n, "metric": m, "model": mod} for n, m, mod in [
        ("g-lo", "mse", "gaacnn small"), ("g-hi", "mse", "gaacnn small"), ("g-ms", "ms-ssim", "gaacnn small"),
        ("c-lo", "mse", "mshp control"), ("c-hi", "mse", "mshp control")]]
    points = {"g-lo": {"bpp": 0.2}, "g-hi": {"bpp": 0.7}, "g-ms": {"bpp": 0.5},
              "c-lo": {"bpp": 0.25}, "c-hi": {"bpp": 0.9}}
    assert [e["name"] for e in pick_for_comparison(entries, points, 0.5)] == ["g-hi", "c-hi"]
    assert [e["name"] for e in pick_for_comparison(entries, points, 0.3)] == ["g-lo", "c-lo"]


def test_final_train_loss_ignores_one_noisy_last_batch(tmp_path):
    from gaacnn.figures import final_train_loss

    log = tmp_path / "train.csv"
    log.write_text("step,loss\n" + "".join(f"{20 * i},{3.0 + 0.1 * (i % 2)}\n" for i in range(1, 20)) + "400,65.0\n")
    assert final_train_loss(log) == pytest.approx(3.1)  # median of the last 10, not the spike
    assert final_train_loss(log, rows=1) == pytest.approx(65.0)
    assert final_train_loss(tmp_path / "absent.csv") is None


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_a_curve_whose_quality_falls_is_refused(method):
    anchor = ([0.1, 0.2, 0.4, 0.8], [26.0, 28.0, 30.0, 32.0])
    dominated = ([0.05, 0.3, 0.35, 0.4], [20.0, 27.0, 26.5, 27.5])  # more rate, less quality
    for fn in (bd_rate, bd_quality):
        with pytest.raises(ValueError, match="does not rise"):
            fn(*anchor, *dominated, method=method)


def test_a_family_label_states_its_steps_and_compute():
    """Issue 20: the ablation states the steps and the CPU-hours of both sides."""
    from gaacnn.figures import family_label

    ladder = [{"steps": 50718, "cpu_hours": 2.2265, "gpu_hours": 0.0, "untracked_wall_seconds": 12312.0},
              {"steps": 50718, "cpu_hours": 2.2534, "gpu_hours": 0.0, "untracked_wall_seconds": 12312.0}]
    assert family_label("control mshp mse", ladder) == \
        "control mshp mse (measured here, 50718 steps, 2.3 CPU-h, 3.4 h untracked wall)"
    gpu = [{"steps": 4700, "gpu_hours": 0.125}, {"steps": 4714, "gpu_hours": 0.13}]
    assert family_label("GAACNN small GPU mse", gpu) == \
        "GAACNN small GPU mse (measured here, 4700-4714 steps, 0.13 GPU-h)"


def test_a_cubic_that_dips_inside_the_overlap_gives_no_number():
    """Four rising points that flatten at the top (a family at its transforms' cap) pull the cubic into a
    dip: the classic BD numbers then mean nothing (here +503 % BD-rate for a curve 2.5 dB above JPEG),
    so they are refused, while pchip, monotone by construction, still answers."""
    jpeg_bpp = [0.221, 0.327, 0.508, 0.660, 0.906, 1.239, 1.857]
    jpeg_psnr = [23.85, 26.67, 29.14, 30.49, 32.17, 33.92, 36.46]
    flat_top_bpp, flat_top_psnr = [0.105, 0.217, 0.335, 0.420], [25.91, 27.98, 28.79, 28.82]
    for fn in (bd_rate, bd_quality):
        with pytest.raises(ValueError, match="cubic fit falls"):
            fn(jpeg_bpp, jpeg_psnr, flat_top_bpp, flat_top_psnr, "cubic")
    assert -60 < bd_rate(jpeg_bpp, jpeg_psnr, flat_top_bpp, flat_top_psnr, "pchip") < -45
    assert 2.3 < bd_quality(jpeg_bpp, jpeg_psnr, flat_top_bpp, flat_top_psnr, "pchip") < 2.6
    rising_psnr = [25.91, 27.98, 28.79, 29.30]  # the same curve without the flat top: the cubic answers
    assert bd_quality(jpeg_bpp, jpeg_psnr, flat_top_bpp, rising_psnr, "cubic") > 2.0
