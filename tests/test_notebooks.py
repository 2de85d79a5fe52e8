"""Notebooks: clean in git, each with a papermill parameters cell; the whole chain in the smoke profile."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gaacnn import data

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

EXPECTED = [
    "01_acnn_feature_maps.png", "01_acnn_receptive_field.png", "01_acblock_fold.png", "02_coordinate_attention.png",
    "02_channel_gates.png", "03_gat_graph.png", "03_sparser_graphs.png", "03_bit_allocation.png", "03_border_rate.png",
    "03_quantization_gap.png", "04_training_curves.png", "04_trunk_progress.png", "05_bd_integrals.png",
    "fig4_kodak_psnr.png", "fig4_kodak_msssim.png", "fig5_tecnick_1_image_psnr.png",
    "fig5_tecnick_1_image_msssim.png", "fig5_clic2025_psnr.png", "fig5_clic2025_msssim.png",
    "visual_comparison.png", "README.md",
] + [f"{t}.{ext}" for t in ("table2_kodak_bd_vs_jpeg", "table1_tecnick_bd_vs_jpeg", "table_clic2025_bd_vs_jpeg",
                            "table_runtime_kodak", "table_ablation_kodak", "table_weights_kodak")
     for ext in ("csv", "md", "png")]


def test_six_numbered_notebooks():
    assert [n.name[:2] for n in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_and_no_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    for c in code:
        assert not c.get("outputs") and not c.get("execution_count"), f"{path.name} has committed outputs"
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):  # cell ids are part of the format from 4.5
        ids = [c.get("id") for c in nb["cells"]]
        assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells without a unique id"


@pytest.mark.skipif(data.mirror_root() is None, reason="needs the data mirror")
def test_smoke_chain_produces_every_figure_and_table():
    r = subprocess.run([sys.executable, "-m", "gaacnn.pipeline", "--profile", "smoke"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    figs = ROOT / "build" / "figures-smoke"
    for name in EXPECTED:
        assert (figs / name).is_file() and (figs / name).stat().st_size > 0, name
    index = json.loads((figs / "index.json").read_text())
    assert set(EXPECTED) - {"README.md"} <= set(index)
    # measured codec rows of the BD tables, and the runtime table, hold finite numbers
    for stem in ("table2_kodak_bd_vs_jpeg", "table_clic2025_bd_vs_jpeg"):
        table = pd.read_csv(figs / f"{stem}.csv")
        measured = table[table["source"] == "measured here"]
        codec_rows = measured[measured["method"].str.contains("Pillow|pillow|imagecodecs")]
        assert len(codec_rows) >= 4
        assert all(math.isfinite(v) for v in codec_rows["bd_psnr_db"])
    kodak = pd.read_csv(figs / "table2_kodak_bd_vs_jpeg.csv")
    published = kodak[kodak["source"] == "published (paper)"].set_index("method")
    assert published.loc["GAACNN", "bd_psnr_db"] == pytest.approx(5.687)
    runtime = pd.read_csv(figs / "table_runtime_kodak.csv")
    assert len(runtime) >= 5 and runtime[["encode_s_per_image", "decode_s_per_image"]].map(math.isfinite).all().all()
    # the executed notebooks as HTML, every figure embedded, and no Tecnick BD row for published 100-image means
    for nb in NOTEBOOKS:
        html = (figs / "notebooks" / nb.with_suffix(".html").name).read_text()
        executed = json.loads((ROOT / "build" / "notebooks" / "smoke" / nb.name).read_text())
        images = sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", []))
        assert html.count("data:image/png;base64") >= images, nb.name
    assert sum(html.count("data:image/png") for html in
               [(figs / "notebooks" / n.with_suffix(".html").name).read_text() for n in NOTEBOOKS]) >= 15
    tecnick = pd.read_csv(figs / "table1_tecnick_bd_vs_jpeg.csv")
    assert not tecnick["method"].str.contains("published, authors").any()
