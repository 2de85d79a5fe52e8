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
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAACNN_CACHE", str(folder))
        patch.setattr(evaluate, "CACHE_DIR", folder)
        yield folder
