"""The command line end to end, in subprocesses, as a user runs it; its many error paths through the
same entry point in this process (``call``), since a fresh interpreter spends about 11 s on imports here."""

import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from gaacnn import GAACNN
from gaacnn.weights import save_weights


def run(*args):
    return subprocess.run([sys.executable, "-m", "gaacnn", *map(str, args)], capture_output=True, text=True)


def call(capsys, *args):
    """``gaacnn.cli.main`` in this process, what ``python -m gaacnn`` and the console script call:
    its exit status and what it printed, as ``run`` gives them."""
    from gaacnn.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    for name, ctx in (("ctx", True), ("hyp", False)):
        m = GAACNN("tiny", context=ctx).eval()
        m.update(force=True)
        save_weights(m, d / f"{name}.pth")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 57, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "img.png")
    return d


def test_compress_decompress(setup):
    d = setup
    r = run("compress", d / "img.png", d / "img.gaac", "--weights", d / "ctx.pth")
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout
    size = (d / "img.gaac").stat().st_size
    assert f"{size} bytes" in r.stdout  # bpp comes from the real file size
    r = run("decompress", d / "img.gaac", d / "out.png", "--weights", d / "ctx.pth")
    assert r.returncode == 0, r.stderr
    with Image.open(d / "out.png") as im:
        assert im.size == (57, 40) and im.mode == "RGB"


def _error(r):
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaacnn: error:"), r.stderr
    return lines[0]


def test_errors_are_one_line(setup, capsys):
    d, cli = setup, partial(call, capsys)
    assert run("compress", d / "img.png", d / "a.gaac", "--weights", d / "ctx.pth").returncode == 0
    data = (d / "a.gaac").read_bytes()
    (d / "trunc.gaac").write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(run("decompress", d / "trunc.gaac", d / "o.png", "--weights", d / "ctx.pth"))
    (d / "png.gaac").write_bytes((d / "img.png").read_bytes())
    assert "not a gaacnn file" in _error(cli("decompress", d / "png.gaac", d / "o.png", "--weights", d / "ctx.pth"))
    assert "context=True" in _error(cli("decompress", d / "a.gaac", d / "o.png", "--weights", d / "hyp.pth"))
    assert "no such file" in _error(cli("decompress", d / "missing.gaac", d / "o.png", "--weights", d / "ctx.pth"))
    assert "not found" in _error(cli("compress", d / "img.png", d / "b.gaac", "--weights", d / "nope.pth"))
    assert "no such file" in _error(cli("compress", d / "nope.png", d / "b.gaac", "--weights", d / "ctx.pth"))
    (d / "empty.png").write_bytes(b"")
    assert "empty" in _error(cli("compress", d / "empty.png", d / "b.gaac", "--weights", d / "ctx.pth"))
    assert "not shipped" in _error(cli("decompress", d / "a.gaac", d / "o.png"))
    (d / "junk.pth").write_bytes(b"junk")
    assert "weights" in _error(cli("compress", d / "img.png", d / "b.gaac", "--weights", d / "junk.pth"))
    assert "folder" in _error(cli("decompress", d / "a.gaac", d / "no" / "o.png", "--weights", d / "ctx.pth"))


def test_rgba_input_is_said(setup):
    d = setup
    Image.new("RGBA", (20, 10), (10, 20, 30, 40)).save(d / "rgba.png")
    r = run("compress", d / "rgba.png", d / "rgba.gaac", "--weights", d / "hyp.pth")
    assert r.returncode == 0 and "alpha channel dropped" in r.stderr


def test_evaluate_reports_and_skips_bad_images(setup):
    d = setup
    (d / "bad.png").write_bytes(b"not an image")
    r = run("evaluate", d / "hyp.pth", "--images", d / "img.png", d / "bad.png", "--dataset", "mine",
            "--out", d / "res")
    assert "bad.png" in _error(r) and "--skip-bad" in r.stderr
    r = run("evaluate", d / "hyp.pth", "--images", d / "img.png", d / "bad.png", "--dataset", "mine",
            "--out", d / "res", "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert "skipping unreadable image" in r.stderr and "1 of 2 images" in r.stderr
    import json

    result = json.loads((d / "res" / "hyp_mine.json").read_text())
    assert result["name"] == "hyp" and len(result["results"]["bpp"]) == 1
    row = result["per_image"][0][0]
    assert row["bpp"] == 8 * row["bytes"] / (40 * 57)


def test_crafted_file_is_one_line_error_and_writes_nothing(setup, capsys):
    from gaacnn.crafted import oversized

    d, cli = setup, partial(call, capsys)
    assert run("compress", d / "img.png", d / "c.gaac", "--weights", d / "ctx.pth").returncode == 0
    data = (d / "c.gaac").read_bytes()
    (d / "big.gaac").write_bytes(oversized(data, 6000, 6000))
    msg = _error(cli("decompress", d / "big.gaac", d / "big.png", "--weights", d / "ctx.pth"))
    assert "corrupted" in msg or "crafted" in msg
    assert not (d / "big.png").exists()
    (d / "huge.gaac").write_bytes(oversized(data, 60000, 60000))
    assert "--max-pixels" in _error(run("decompress", d / "huge.gaac", d / "huge.png", "--weights", d / "ctx.pth"))
    assert not (d / "huge.png").exists()
    bad = bytearray(data[:-4])
    bad[7] = 0xA6  # a non-ASCII byte in the architecture name
    from gaacnn.crafted import with_crc

    (d / "name.gaac").write_bytes(with_crc(bad))
    assert "invalid architecture" in _error(cli("decompress", d / "name.gaac", d / "n.png", "--weights", d / "ctx.pth"))


def test_help_answers_without_importing_torch():
    """``gaacnn --help`` (and any usage error) builds the parser only: torch, CompressAI and
    torch-geometric took it to 12-20 s here; each command imports them when it runs."""
    probe = ("import sys, runpy; sys.argv = ['gaacnn', 'train', '--help']\n"
             "try:\n    runpy.run_module('gaacnn', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'compressai', 'torch_geometric') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--batch" in r.stdout  # the train command's own help, printed
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_results_keep_their_names(setup, tmp_path):
    """Two lambdas of one family (names with a decimal point) and two files that share a name:
    every model gets its own results file, named after it."""
    from gaacnn.cli import result_labels

    d = setup
    (d / "a").mkdir(exist_ok=True)
    (d / "b").mkdir(exist_ok=True)
    for sub in ("a", "b"):
        (d / sub / "weights.pth").write_bytes((d / "hyp.pth").read_bytes())
    assert result_labels([str(d / "a" / "weights.pth"), str(d / "b" / "weights.pth")]) == ["a-weights", "b-weights"]
    names = ["gaacnn-small-mse-0.0035", "gaacnn-small-mse-0.013"]
    r = run("evaluate", *names, "--images", d / "img.png", "--dataset", "mine", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    for name in names:
        assert json.loads((tmp_path / f"{name}_mine.json").read_text())["name"] == name
