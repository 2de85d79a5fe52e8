"""The evaluation cache is honest (issue 21, item 7): keyed on the code that produces a number, and
``verify`` measures a sample of cached rows again and reports any difference."""

import json
from dataclasses import replace

import pytest

from gaacnn import evaluate
from gaacnn.anchors import CODECS
from gaacnn.data import mirror_root

pytestmark = pytest.mark.skipif(mirror_root() is None, reason="needs the data mirror")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    from gaacnn.figures import images_for

    monkeypatch.setattr(evaluate, "CACHE_DIR", tmp_path)
    jpeg = replace(CODECS["jpeg"], qualities=(40,))
    evaluate.evaluate_codec(jpeg, images_for("kodak", 2), "kodak", progress=False)
    (path,) = tmp_path.glob("*.json")
    return path


def test_verify_passes_on_honest_rows_and_fails_on_an_altered_number(cache):
    assert evaluate.verify(sample=2, cache=cache.parent, progress=False) == []
    entry = json.loads(cache.read_text())
    entry["value"]["rows"][1]["psnr-rgb"] += 0.01
    cache.write_text(json.dumps(entry))
    problems = evaluate.verify(sample=2, cache=cache.parent, progress=False)
    assert len(problems) == 1 and "psnr-rgb" in problems[0] and "kodim02" in problems[0]


def test_the_key_follows_the_code(cache, monkeypatch):
    """A change in the code that measures a row gives it another key: the old row is not read (and
    ``prune`` removes it)."""
    entry = json.loads(cache.read_text())
    assert entry["key"]["code"] == evaluate.code_hash("codec") != evaluate.code_hash("model")
    monkeypatch.setattr(evaluate, "code_hash", lambda kind: "changed")
    calls = []
    jpeg = replace(CODECS["jpeg"], qualities=(40,),
                   encode=lambda im, q: calls.append(q) or CODECS["jpeg"].encode(im, q))
    from gaacnn.figures import images_for

    evaluate.evaluate_codec(jpeg, images_for("kodak", 2), "kodak", progress=False)
    assert calls == [40, 40]  # measured again, not read from the old row
    assert evaluate.prune(cache.parent) == [cache]  # the old code's row goes, the new one stays
    assert len(list(cache.parent.glob("*.json"))) == 1


def test_every_shipped_model_has_rows_current_under_todays_model_code():
    """The committed cache (what `make paper-figures` reads) answers for every shipped weights file under
    the current model code hash. A change to a hashed module (evaluate.MODEL_CODE, presets included) sends
    every model row back to be measured: this fails until the figures are regenerated, instead of the
    next `make paper-figures` finding out."""
    from pathlib import Path

    from gaacnn import manifest

    committed = Path(evaluate.__file__).resolve().parent.parent / "results" / "cache"
    code = evaluate.code_hash("model")
    current = {row["key"]["weights"] for row in (json.loads(f.read_text()) for f in committed.glob("*.json"))
               if row["key"]["kind"] == "model" and row["key"]["code"] == code}
    missing = [e["file"] for e in manifest.entries() if e["sha256"] not in current]
    assert not missing, f"no cached rows under model code {code} for {missing}: regenerate the figures"
