import os

import pytest
import torch

from gaacnn import GAACNN


@pytest.fixture(scope="session", params=[True, False], ids=["context", "hyperprior"])
def tiny_model(request):
    """A random-weight tiny model, entropy tables updated, for both configurations."""
    torch.manual_seed(0)
    model = GAACNN("tiny", context=request.param).eval()
    model.update(force=True)
    return model


@pytest.fixture(scope="session")
def small_models():
    torch.manual_seed(1)
    out = {}
    for ctx in (True, False):
        m = GAACNN("small", context=ctx).eval()
        m.update(force=True)
        out[ctx] = m
    return out


@pytest.fixture(scope="session", autouse=True)
def private_evaluation_cache(tmp_path_factory):
    """Tests (and the subprocesses they start) cache evaluations in a temporary folder, never in
    the repository's results/cache, which holds the shipped models' evaluations."""
    from gaacnn import evaluate

    folder = tmp_path_factory.mktemp("evaluation-cache")
    saved_env, saved_dir = os.environ.get("GAACNN_CACHE"), evaluate.CACHE_DIR
    os.environ["GAACNN_CACHE"], evaluate.CACHE_DIR = str(folder), folder
    yield folder
    evaluate.CACHE_DIR = saved_dir
    if saved_env is None:
        os.environ.pop("GAACNN_CACHE", None)
    else:
        os.environ["GAACNN_CACHE"] = saved_env
