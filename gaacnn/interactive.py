"""Widgets for the notebooks, with a static fallback (issue 21): in JupyterLab a figure redraws as its
controls move; under papermill (``make paper-figures``, which passes ``interactive=False``) the same
function draws once with every control's starting value, so the published HTML shows a figure.

Where this sits: notebooks -> [this module] -> diagnostics / figures (what is drawn) -> the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def show(draw: Callable[..., Any], interactive: bool, **controls: Any) -> Any:
    """``draw(**values)`` under ipywidgets controls (each an ipywidgets control: Dropdown, IntSlider,
    ...): an ``ipywidgets.interactive`` that the notebook displays, or, when not ``interactive``,
    ``draw`` called once with each control's current value (its result returned)."""
    if not interactive:
        return draw(**{name: control.value for name, control in controls.items()})
    import ipywidgets

    return ipywidgets.interactive(draw, **controls)
