"""dlbook.widgets.explore: kernel-free HTML in the book, ipywidgets in a kernel."""

from __future__ import annotations

import base64
import io
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from dlbook import plot, widgets

X = np.linspace(-3, 3, 200)


def draw_leaky(fig, alpha, kind="leaky"):
    ax = fig.subplots()
    y = (
        np.where(X > 0, X, alpha * X)
        if kind == "leaky"
        else np.where(X > 0, X, alpha * np.expm1(X))
    )
    ax.plot(X, y)
    ax.set_ylim(-3, 3)
    ax.set_title(f"{kind} α={alpha}")


def frames_of(html: str) -> tuple[list[str], list[int]]:
    """The distinct data URIs and the combination -> frame order from the inline script."""
    unique = json.loads(re.search(r"var frames=(\[.*?\]);", html).group(1))
    order = json.loads(re.search(r"var order=(\[.*?\]);", html).group(1))
    return unique, order


def png_of(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.fixture(autouse=True)
def _style():
    plot.setup()


def test_static_html_has_one_frame_per_combination():
    out = widgets.explore(
        draw_leaky, {"alpha": [0.0, 0.1, 0.2, 0.3]}, {"kind": ["leaky", "elu"]}, static=True
    )
    assert isinstance(out, widgets.StaticExplorer)
    assert out.n_frames == 8
    html = out._repr_html_()
    unique, order = frames_of(html)
    assert len(order) == 8 and max(order) < len(unique)
    assert 'data-frames="8"' in html
    assert html.count('class="dl-slider"') == 1
    assert html.count('class="dl-select"') == 1
    assert html.count("<option") == 2
    assert html.count('class="dl-frame"') == 1
    assert html.startswith('<div class="dl-explorer"')


def test_frames_differ_when_the_parameter_changes():
    out = widgets.explore(
        draw_leaky, {"alpha": [0.0, 0.5]}, {"kind": ["leaky", "elu"]}, static=True
    )
    # order: kind varies slowest; (leaky, 0), (leaky, 0.5), (elu, 0), (elu, 0.5)
    assert out.frames[0] != out.frames[1], "moving the slider must change the picture"
    assert out.frames[0] != out.frames[2], "changing the choice must change the picture"
    assert len(set(out.frames)) == 4


def test_identical_frames_are_stored_once():
    def constant(fig, alpha):
        fig.subplots().plot([0, 1], [0, 1])

    html = widgets.explore(constant, {"alpha": [1, 2, 3]}, static=True)._repr_html_()
    unique, order = frames_of(html)
    assert len(unique) == 1 and order == [0, 0, 0]


def test_frames_are_small_palette_pngs_of_the_requested_size():
    out = widgets.explore(draw_leaky, {"alpha": [0.1, 0.2]}, static=True)
    image = png_of(out.frames[0])
    assert image.size == (560, 256)  # figsize (7, 3.2) at dpi 80
    assert image.mode == "P"  # palette, not RGBA: a fraction of the bytes
    assert len(image.getcolors()) <= 64
    for uri in out.frames:
        assert len(uri) < 20_000, "a line-plot frame should stay well under 20 kB"


def test_initial_value_and_labels():
    out = widgets.explore(
        draw_leaky,
        {"alpha": [0.1, 0.2, 0.3]},
        labels={"alpha": "α"},
        initial={"alpha": 0.3},
        static=True,
    )
    html = out._repr_html_()
    assert 'value="2"' in html and ">α <input" in html
    src = re.search(r'<img class="dl-frame"[^>]* src="([^"]+)"', html).group(1)
    assert src == out.frames[2]
    assert '<output class="dl-value">0.3</output>' in html


def test_html_is_self_contained():
    html = widgets.explore(draw_leaky, {"alpha": [0.1, 0.2]}, static=True)._repr_html_()
    assert "http://" not in html and "https://" not in html
    assert "<script src" not in html
    assert html.count("<script>") == 1


def test_no_figure_left_open():
    def with_pyplot(fig, a):
        fig.subplots().plot([0, a])
        plt.figure()  # a careless draw(): its stray figure is closed too

    before = plt.get_fignums()
    widgets.explore(with_pyplot, {"a": [1, 2]}, static=True)
    assert plt.get_fignums() == before


def test_environment_variable_selects_static(monkeypatch):
    monkeypatch.setenv("DLBOOK_STATIC", "1")
    out = widgets.explore(draw_leaky, {"alpha": [0.1, 0.2]})
    assert isinstance(out, widgets.StaticExplorer)


def test_outside_a_kernel_is_static(monkeypatch):
    monkeypatch.delenv("DLBOOK_STATIC", raising=False)
    assert isinstance(widgets.explore(draw_leaky, {"alpha": [0.1, 0.2]}), widgets.StaticExplorer)


def test_live_mode_redraws_on_change():
    ipywidgets = pytest.importorskip("ipywidgets")
    box = widgets.explore(
        draw_leaky, {"alpha": [0.0, 0.5, 1.0]}, {"kind": ["leaky", "elu"]}, static=False
    )
    assert isinstance(box, ipywidgets.VBox)
    controls = box.children[0].children
    slider = next(c for c in controls if isinstance(c, ipywidgets.SelectionSlider))
    dropdown = next(c for c in controls if isinstance(c, ipywidgets.Dropdown))
    image = box.children[1]
    first = image.value
    slider.value = 1.0
    assert image.value != first
    second = image.value
    dropdown.value = "elu"
    assert image.value != second
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ("sliders", "choices", "error", "match"),
    [
        ({"alpha": [0.1]}, None, ValueError, "at least 2 values"),
        (
            {"alpha": list(range(11))},
            {"kind": [str(i) for i in range(11)]},
            ValueError,
            "max_frames",
        ),
        ({}, None, ValueError, "at least one slider"),
        ({"alpha": [1, 2]}, {"alpha": ["a"]}, ValueError, "both as a slider"),
        ({"not valid": [1, 2]}, None, ValueError, "keyword argument"),
        ({"alpha": 0.5}, None, TypeError, "sequence"),
        ({"alpha": "abc"}, None, TypeError, "sequence"),
        ({"alpha": [1, 2]}, {"kind": [1, 2]}, TypeError, "strings"),
        ({"alpha": [1, 2]}, {"kind": []}, ValueError, "no options"),
        ([1, 2], None, TypeError, "dict"),
    ],
)
def test_bad_input_is_rejected(sliders, choices, error, match):
    with pytest.raises(error, match=match):
        widgets.explore(draw_leaky, sliders, choices, static=True)


def test_bad_draw_and_initial():
    with pytest.raises(TypeError, match="callable"):
        widgets.explore("draw", {"alpha": [1, 2]}, static=True)
    with pytest.raises(ValueError, match="not one of its values"):
        widgets.explore(draw_leaky, {"alpha": [1, 2]}, initial={"alpha": 3}, static=True)
    with pytest.raises(ValueError, match="unknown controls"):
        widgets.explore(draw_leaky, {"alpha": [1, 2]}, labels={"beta": "β"}, static=True)


def test_max_frames_can_be_raised():
    out = widgets.explore(
        lambda fig, a: fig.subplots(), {"a": list(range(5))}, max_frames=5, static=True
    )
    assert out.n_frames == 5
    with pytest.raises(ValueError, match="max_frames=4"):
        widgets.explore(lambda fig, a: None, {"a": list(range(5))}, max_frames=4, static=True)


def test_caption_follows_the_controls():
    out = widgets.explore(
        draw_leaky,
        {"alpha": [0.1, 0.2]},
        {"kind": ["leaky", "elu"]},
        caption=lambda alpha, kind: f"{kind}: a = {alpha} </script>",
        static=True,
    )
    html = out._repr_html_()
    assert out.captions == [
        "leaky: a = 0.1 &lt;/script&gt;",
        "leaky: a = 0.2 &lt;/script&gt;",
        "elu: a = 0.1 &lt;/script&gt;",
        "elu: a = 0.2 &lt;/script&gt;",
    ]
    assert '<div class="dl-caption">leaky: a = 0.1 &lt;/script&gt;</div>' in html
    assert html.count("</script>") == 1, "a caption must not end the inline script"


def test_bilingual_caption():
    out = widgets.explore(
        draw_leaky,
        {"alpha": [0.1, 0.2]},
        caption=lambda alpha: plot.bilingual(f"slope {alpha}", f"斜率 {alpha}"),
        static=True,
    )
    assert out.captions[1] == (
        '<span class="dl-en" lang="en">slope 0.2</span>'
        '<span class="dl-zh" lang="zh-CN">斜率 0.2</span>'
    )


def test_live_caption():
    ipywidgets = pytest.importorskip("ipywidgets")
    box = widgets.explore(
        draw_leaky, {"alpha": [0.0, 0.5]}, caption=lambda alpha: f"a={alpha}", static=False
    )
    label = next(c for c in box.children[0].children if isinstance(c, ipywidgets.Label))
    slider = next(c for c in box.children[0].children if isinstance(c, ipywidgets.SelectionSlider))
    assert label.value == "a=0.0"
    slider.value = 0.5
    assert label.value == "a=0.5"
