"""latent_gain.scale_latent: y grows by s while every module reading it computes what it did before."""

import copy

import pytest
import torch

from gaacnn.errors import GaacnnError
from gaacnn.latent_gain import scale_latent
from gaacnn.model import GAACNN


@pytest.fixture(scope="module")
def model() -> GAACNN:
    torch.manual_seed(0)
    m = GAACNN("tiny")
    with torch.no_grad():  # trained-looking: nonzero biases and skip weights, beta away from 1
        for name, p in m.named_parameters():
            if name.endswith(("bias", "gamma", "beta")):
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("beta") else 0.0))
    return m.eval()


@pytest.mark.parametrize("s", [1.7, 0.6])
def test_the_latent_scales_and_its_readers_do_not_change(model: GAACNN, s: float) -> None:
    gained = scale_latent(copy.deepcopy(model), s)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y, y_gained = model.g_a(x), gained.g_a(x)
        torch.testing.assert_close(y_gained, s * y, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gained.h_a(y_gained), model.h_a(y), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(gained.g_s(y_gained), model.g_s(y), rtol=1e-4, atol=1e-5)
        hyper = model.h_s(torch.round(model.h_a(y)))
        y_hat = torch.round(y)
        w, mu, sigma = model.mixture(y_hat, hyper)
        w_g, mu_g, sigma_g = gained.mixture(s * y_hat, hyper)
    torch.testing.assert_close(w_g, w, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mu_g, s * mu, rtol=1e-4, atol=1e-4)
    ratio = sigma_g / (s * sigma)  # the one approximate part: a softplus linearised at its bias
    assert 0.5 < ratio.median() < 2.0


def test_a_model_without_the_context_model_or_a_bad_gain_is_refused(model: GAACNN) -> None:
    with pytest.raises(GaacnnError):
        scale_latent(GAACNN("tiny", context=False), 2.0)
    with pytest.raises(GaacnnError):
        scale_latent(copy.deepcopy(model), 0.0)
