"""Notebook widgets respond to their controls, and fall back to one static call under papermill."""

import ipywidgets
import torch

from gaacnn.diagnostics import latent_channels
from gaacnn.interactive import show
from gaacnn.model import GAACNN


def test_widgets_redraw_when_a_control_moves_and_draw_once_without_them():
    calls = []

    def draw(channel, name):
        calls.append((channel, name))
        return channel

    slider = ipywidgets.IntSlider(value=2, min=0, max=5)
    menu = ipywidgets.Dropdown(options=["a", "b"], value="a")
    assert show(draw, False, channel=slider, name=menu) == 2 and calls == [(2, "a")]
    calls.clear()
    widget = show(draw, True, channel=slider, name=menu)
    assert isinstance(widget, ipywidgets.interactive) and slider in widget.children
    widget.update()
    slider.value = 4
    menu.value = "b"
    assert calls[0] == (2, "a") and (4, "a") in calls and calls[-1] == (4, "b")


def test_latent_channels_are_ordered_by_their_bits():
    torch.manual_seed(0)
    model = GAACNN("tiny").eval()
    model.update(force=True)
    view = latent_channels(model, torch.rand(1, 3, 64, 64))
    c = model.preset.latent
    assert view["y_hat"].shape == view["bits"].shape and view["y_hat"].shape[0] == c
    assert torch.equal(view["y_hat"], view["y_hat"].round()) and (view["bits"] >= 0).all()
    totals = view["bits"].sum((1, 2))[view["order"]]
    assert sorted(view["order"].tolist()) == list(range(c)) and (totals[:-1] >= totals[1:]).all()


def test_the_latent_explorer_draws_the_ranked_channel_and_clamps_the_rank():
    from gaacnn.figures import plot_latent_channel

    torch.manual_seed(0)
    model = GAACNN("tiny").eval()
    model.update(force=True)
    x = torch.rand(1, 3, 64, 64)
    view = latent_channels(model, x)
    first = plot_latent_channel(x, "img", view, 0, "tiny")
    last = plot_latent_channel(x, "img", view, 10**6, "tiny")
    assert first.axes[2].get_title().startswith(f"channel {int(view['order'][0])} (rank 1)")
    assert last.axes[2].get_title().startswith(f"channel {int(view['order'][-1])} ")
    assert first.axes[0].get_title() == "img" and first.axes[1].get_title().startswith("tiny: ")
