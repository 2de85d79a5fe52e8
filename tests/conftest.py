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
