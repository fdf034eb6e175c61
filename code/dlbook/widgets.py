"""Explorers: a figure with sliders and drop-downs, live or kernel-free.

One call serves both ways of reading the book::

    def draw(fig, alpha, kind):
        ax = fig.subplots()
        ax.plot(x, f(x, alpha, kind))

    widgets.explore(draw, sliders={"alpha": [0.01, 0.1, 0.2, 0.3]},
                    choices={"kind": ["leaky", "elu"]})

* **Live** (a running Jupyter kernel with ``ipywidgets``): selection sliders
  and drop-downs that call ``draw`` again on every change.
* **Static** (the built book: ``make book`` sets ``DLBOOK_STATIC=1``; or
  ``static=True``): every combination of values is drawn once, stored as a
  small palette PNG, and the result is self-contained HTML — a ``<select>``
  per choice, an ``<input type="range">`` per slider and a few lines of
  plain JavaScript that swap the image. No kernel, no external script.

The sliders therefore take the exact values to show (``np.linspace(...)``),
not a range: the static page can only show frames drawn in advance.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence

from . import i18n

__all__ = ["BilingualExplorer", "StaticExplorer", "explore"]

MAX_FRAMES = 120
_PALETTE_COLORS = 64
_counter = itertools.count(1)


def _format_value(value: object) -> str:
    """How a slider value reads next to the slider: ``0.1``, ``3``, ``1e-05``."""
    if isinstance(value, str) or type(value).__name__ in ("bool", "bool_"):
        return str(value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.3g}"


def _as_list(values: object, what: str) -> list:
    """A list from a sequence, range or NumPy array; not from a string or a scalar."""
    if isinstance(values, str | bytes | Mapping):
        raise TypeError(f"explore: {what} needs a sequence, got {type(values).__name__}")
    try:
        return list(values)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"explore: {what} needs a sequence, got {type(values).__name__}") from None


def _check(
    draw: object,
    sliders: object,
    choices: object,
    labels: object,
    initial: object,
    max_frames: int,
) -> tuple[dict[str, list], dict[str, list[str]], dict[str, str], dict[str, int]]:
    """Validate the arguments; return sliders, choices, labels and start indices."""
    if not callable(draw):
        raise TypeError(
            f"explore: draw must be callable as draw(fig, **values), got {type(draw).__name__}"
        )
    if not isinstance(sliders, Mapping):
        raise TypeError(
            f"explore: sliders must be a dict name -> values, got {type(sliders).__name__}"
        )
    if choices is None:
        choices = {}
    if not isinstance(choices, Mapping):
        raise TypeError(
            f"explore: choices must be a dict name -> strings, got {type(choices).__name__}"
        )
    if not sliders and not choices:
        raise ValueError("explore: give at least one slider or one choice")
    clash = set(sliders) & set(choices)
    if clash:
        raise ValueError(f"explore: {sorted(clash)} named both as a slider and as a choice")

    slider_values: dict[str, list] = {}
    for name, values in sliders.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"explore: slider name {name!r} is not a valid keyword argument name")
        values = _as_list(values, f"slider {name!r}")
        if len(values) < 2:
            raise ValueError(f"explore: slider {name!r} needs at least 2 values, got {len(values)}")
        slider_values[name] = values

    choice_values: dict[str, list[str]] = {}
    for name, options in choices.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"explore: choice name {name!r} is not a valid keyword argument name")
        options = _as_list(options, f"choice {name!r}")
        if not options:
            raise ValueError(f"explore: choice {name!r} has no options")
        bad = [o for o in options if not isinstance(o, str)]
        if bad:
            raise TypeError(
                f"explore: the options of choice {name!r} must be strings, got {bad[:3]!r}"
            )
        if len(set(options)) != len(options):
            raise ValueError(f"explore: choice {name!r} repeats an option: {options!r}")
        choice_values[name] = options

    n_frames = math.prod(len(v) for v in [*choice_values.values(), *slider_values.values()])
    if n_frames > max_frames:
        raise ValueError(
            f"explore: {n_frames} combinations to draw, more than max_frames={max_frames}; "
            "use fewer slider values or raise max_frames"
        )

    labels = dict(labels or {})
    unknown = set(labels) - set(slider_values) - set(choice_values)
    if unknown:
        raise ValueError(f"explore: labels for unknown controls {sorted(unknown)}")

    start: dict[str, int] = {}
    initial = dict(initial or {})
    for name, values in [*choice_values.items(), *slider_values.items()]:
        if name in initial:
            wanted = initial.pop(name)
            matches = [i for i, v in enumerate(values) if _same(v, wanted)]
            if not matches:
                raise ValueError(f"explore: initial {name}={wanted!r} is not one of its values")
            start[name] = matches[0]
        else:
            start[name] = 0
    if initial:
        raise ValueError(f"explore: initial values for unknown controls {sorted(initial)}")
    return slider_values, choice_values, labels, start


def _same(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _draw(draw: Callable, fig, values: dict) -> None:
    """Draw one frame into ``fig`` (no pyplot figure is left behind)."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    fig.clf()
    draw(fig, **values)
    for num in set(plt.get_fignums()) - before:  # a draw() that used pyplot: no stray image
        plt.close(num)


def _rasterize(fig) -> bytes:
    """``fig`` as RGBA bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return bytes(canvas.buffer_rgba())


def _render(draw: Callable, fig, values: dict, lang: str = "en") -> bytes:
    """Draw one frame into ``fig`` and return it as RGBA bytes, its texts in ``lang``."""
    _draw(draw, fig, values)
    with i18n.in_language(fig, lang):
        return _rasterize(fig)


def _png(rgba: bytes, size: tuple[int, int], colors: int | None) -> bytes:
    from PIL import Image

    image = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB")
    if colors is not None:
        image = image.quantize(
            colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _new_figure(figsize: tuple[float, float], dpi: float):
    from matplotlib.figure import Figure

    # A Figure outside pyplot: the notebook never shows it by itself.
    fig = Figure(figsize=figsize, dpi=dpi)
    fig.set_layout_engine("constrained")
    return fig


class StaticExplorer:
    """A kernel-free explorer: pre-drawn frames and a little JavaScript.

    Attributes
    ----------
    frames : list[str]
        One data URI per combination, choices varying slowest, in the order of
        ``itertools.product(*choices.values(), *sliders.values())``.
    """

    def __init__(
        self,
        frames: list[str],
        sliders: dict[str, list],
        choices: dict[str, list[str]],
        labels: dict[str, str],
        start: dict[str, int],
        size: tuple[int, int],
        alt: str,
        captions: list[str] | None = None,  # HTML, one per frame
    ) -> None:
        self.frames = frames
        self.sliders = sliders
        self.choices = choices
        self.labels = labels
        self.start = start
        self.size = size
        self.alt = alt
        self.captions = captions
        digest = hashlib.sha1("".join(frames).encode()).hexdigest()[:10]
        self.element_id = f"dl-explorer-{next(_counter)}-{digest}"

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def _controls_html(self) -> str:
        parts = []
        for name, options in self.choices.items():
            opts = "".join(
                f'<option value="{i}"{" selected" if i == self.start[name] else ""}>'
                f"{html.escape(o)}</option>"
                for i, o in enumerate(options)
            )
            label = html.escape(self.labels.get(name, name))
            parts.append(
                f'<label class="dl-control">{label} '
                f'<select class="dl-select" data-name="{name}">{opts}</select></label>'
            )
        for name, values in self.sliders.items():
            shown = [_format_value(v) for v in values]
            label = html.escape(self.labels.get(name, name))
            k = self.start[name]
            parts.append(
                f'<label class="dl-control">{label} '
                f'<input type="range" class="dl-slider" data-name="{name}" min="0" '
                f'max="{len(values) - 1}" step="1" value="{k}" '
                f"data-values='{html.escape(json.dumps(shown), quote=True)}'>"
                f'<output class="dl-value">{html.escape(shown[k])}</output></label>'
            )
        return "".join(parts)

    def _start_index(self) -> int:
        index = 0
        for name, values in [*self.choices.items(), *self.sliders.items()]:
            index = index * len(values) + self.start[name]
        return index

    def _unique_frames(self) -> tuple[list[str], list[int]]:
        """The distinct frames, and for each combination the index of its frame."""
        unique: dict[str, int] = {}
        order = [unique.setdefault(f, len(unique)) for f in self.frames]
        return list(unique), order

    def _repr_html_(self) -> str:
        return self._html()

    def _html(self, base: StaticExplorer | None = None) -> str:
        """The explorer as HTML; frames that ``base`` (shown earlier in the page) also
        has are taken from it instead of being written twice."""
        width, height = self.size
        unique, order = self._unique_frames()
        frames = _js(unique)
        borrow = ""
        if base is not None:
            theirs = {f: i for i, f in enumerate(base._unique_frames()[0])}
            frames = "[" + ",".join(str(theirs[f]) if f in theirs else _js(f) for f in unique) + "]"
            borrow = (
                f'var base=(window.dlFrames||{{}})["{base.element_id}"]||[];'
                "frames=frames.map(function(f){return typeof f==='number'?base[f]:f;});"
            )
        captions = _js(self.captions or [])
        script = (
            "(function(){"
            f'var root=document.getElementById("{self.element_id}");'
            f"var frames={frames};var order={_js(order)};{borrow}"
            "window.dlFrames=window.dlFrames||{};"
            f'window.dlFrames["{self.element_id}"]=frames;'
            f"var captions={captions};"
            'var cap=root.querySelector(".dl-caption");'
            'var img=root.querySelector(".dl-frame");'
            'var ctrls=root.querySelectorAll(".dl-select,.dl-slider");'
            "function show(){var i=0;ctrls.forEach(function(c){"
            "var n=c.tagName==='SELECT'?c.options.length:(+c.max+1);i=i*n+(+c.value);"
            "if(c.tagName==='INPUT'){c.nextElementSibling.textContent="
            "JSON.parse(c.dataset.values)[+c.value];}});"
            "img.src=frames[order[i]];if(cap){cap.innerHTML=captions[i];}}"
            "ctrls.forEach(function(c){c.addEventListener('input',show);"
            "c.addEventListener('change',show);});"
            "})();"
        )
        caption = ""
        if self.captions:
            caption = f'<div class="dl-caption">{self.captions[self._start_index()]}</div>'
        return (
            f'<div class="dl-explorer" id="{self.element_id}" data-frames="{self.n_frames}">'
            f'<div class="dl-controls">{self._controls_html()}</div>{caption}'
            f'<img class="dl-frame" width="{width}" height="{height}" '
            f'alt="{html.escape(self.alt)}" src="{self.frames[self._start_index()]}">'
            f"<script>{script}</script></div>"
        )

    def __repr__(self) -> str:
        controls = [*self.choices, *self.sliders]
        return f"<static explorer: {self.n_frames} frames, controls {', '.join(controls)}>"


def _caption_html(text: object) -> str:
    """A caption as HTML: a bilingual pair becomes two language spans."""
    en, zh = getattr(text, "en", None), getattr(text, "zh", None)
    if isinstance(en, str) and isinstance(zh, str):
        return (
            f'<span class="dl-en" lang="en">{html.escape(en)}</span>'
            f'<span class="dl-zh" lang="zh-CN">{html.escape(zh)}</span>'
        )
    return html.escape(str(text))


def _caption_text(text: object, lang: str = "en") -> str:
    """A caption as plain text in ``lang`` (a live notebook shows one language)."""
    en, zh = getattr(text, "en", None), getattr(text, "zh", None)
    if isinstance(en, str) and isinstance(zh, str):
        return zh if lang == "zh" else en
    return str(text)


def _js(value: object) -> str:
    """JSON for an inline script: ``</`` cannot close the ``<script>`` element early."""
    return json.dumps(value).replace("</", "<\\/")


def _live_wanted(static: bool | None) -> bool:
    if static is not None:
        return not static
    if os.environ.get("DLBOOK_STATIC", "") not in ("", "0"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def explore(
    draw: Callable[..., object],
    sliders: Mapping[str, Sequence],
    choices: Mapping[str, Sequence[str]] | None = None,
    *,
    figsize: tuple[float, float] = (7, 3.2),
    dpi: float = 80,
    static: bool | None = None,
    max_frames: int = MAX_FRAMES,
    labels: Mapping[str, str] | None = None,
    initial: Mapping[str, object] | None = None,
    alt: str = "",
    caption: Callable[..., str] | None = None,
):
    """Show ``draw(fig, **values)`` with a slider per parameter and a drop-down per choice.

    Parameters
    ----------
    draw : callable
        ``draw(fig, **values)`` draws into an empty ``matplotlib.figure.Figure``
        (use ``fig.subplots()``; the figure uses the constrained layout).
    sliders : dict of name -> sequence
        The exact values each slider steps through (at least 2 each).
    choices : dict of name -> sequence of str, optional
        The options of each drop-down.
    figsize, dpi : figure size in inches and resolution of the frames
        (the default is 560 x 256 pixels).
    static : bool, optional
        ``True`` forces the kernel-free HTML, ``False`` the live widgets. By
        default: live in a running kernel with ipywidgets, static when the
        environment variable ``DLBOOK_STATIC`` is set (the book build) or
        outside a kernel.
    max_frames : int
        Upper bound on the number of combinations (default 120): each is
        drawn and stored in the page.
    labels : dict of name -> str, optional
        What to show next to a control instead of its name (e.g. ``"α"``).
    initial : dict of name -> value, optional
        The starting value of a control (one of its values); default the first.
    alt : str
        Alternative text of the image in the static page.
    caption : callable, optional
        ``caption(**values)`` returns a line shown between the controls and
        the figure: a ``str``, or a :func:`dlbook.plot.bilingual` pair (the
        book then shows the page's language; a live notebook shows both).

    Returns
    -------
    ipywidgets.VBox (live) or StaticExplorer (static; shows as HTML).

    Raises
    ------
    ValueError
        A slider with fewer than 2 values, more than ``max_frames``
        combinations, clashing or invalid names, an initial value that is not
        among the values.
    TypeError
        ``draw`` not callable, sliders or choices of the wrong type.
    """
    slider_values, choice_values, label_map, start = _check(
        draw, sliders, choices, labels, initial, max_frames
    )
    if _live_wanted(static):
        return _live(draw, slider_values, choice_values, label_map, start, figsize, dpi, caption)

    fig = _new_figure(figsize, dpi)
    names = [*choice_values, *slider_values]
    lang = i18n.language()
    langs = ("en", "zh") if lang == "both" else (lang,)
    frames: dict[str, list[str]] = {code: [] for code in langs}
    captions, missing = [], set()
    for combo in itertools.product(*choice_values.values(), *slider_values.values()):
        values = dict(zip(names, combo, strict=True))
        _draw(draw, fig, values)
        size = fig.canvas.get_width_height()
        for code in langs:
            with i18n.in_language(fig, code, missing):
                png = _png(_rasterize(fig), size, _PALETTE_COLORS)
            frames[code].append("data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        if caption is not None:
            captions.append(_caption_html(caption(**values)))
    explorers = {}
    for code in langs:
        tr = _translator(code, missing)
        explorers[code] = StaticExplorer(
            frames[code],
            slider_values,
            {name: [tr(o) for o in options] for name, options in choice_values.items()},
            {name: tr(label_map.get(name, name)) for name in names},
            start,
            size,
            tr(alt) if alt else alt,
            captions or None,
        )
    if lang != "both":
        return explorers[lang]
    return BilingualExplorer(explorers["en"], explorers["zh"], missing)


def _translator(lang: str, missing: set[str]) -> Callable[[str], str]:
    """A function giving a control label or option in ``lang`` (English if no row)."""

    def tr(text: str) -> str:
        if lang == "en":
            return text
        found = i18n.translate(str(text), strict=False)
        if found is None:
            missing.add(str(text))
            return str(text)
        return found

    return tr


class BilingualExplorer:
    """An English and a Chinese :class:`StaticExplorer`; the book shows the page's one."""

    def __init__(self, en: StaticExplorer, zh: StaticExplorer, missing: set[str] | None = None):
        self.en, self.zh = en, zh
        self.missing = set(missing or ())

    @property
    def n_frames(self) -> int:
        return self.en.n_frames

    def _repr_html_(self) -> str:
        flag = ""
        if self.missing:
            listed = html.escape(" | ".join(sorted(self.missing)), quote=True)
            flag = f' data-dl-missing="{listed}"'
        return (
            f'<div class="dl-en" lang="en"{flag}>{self.en._repr_html_()}</div>'
            f'<div class="dl-zh" lang="zh-CN"{flag}>{self.zh._html(base=self.en)}</div>'
        )

    def __repr__(self) -> str:
        return repr(self.en)


def _live(draw, slider_values, choice_values, labels, start, figsize, dpi, caption=None):
    import ipywidgets as w

    fig = _new_figure(figsize, dpi)
    lang = "zh" if i18n.language() == "zh" else "en"
    tr = _translator(lang, set())
    image = w.Image(format="png")
    label = w.Label()
    errors = w.Output()
    controls: dict[str, w.ValueWidget] = {}
    for name, options in choice_values.items():
        controls[name] = w.Dropdown(
            options=[(tr(o), o) for o in options],
            value=options[start[name]],
            description=tr(labels.get(name, name)),
        )
    for name, values in slider_values.items():
        controls[name] = w.SelectionSlider(
            options=[(_format_value(v), v) for v in values],
            value=values[start[name]],
            description=tr(labels.get(name, name)),
            continuous_update=True,
        )

    def redraw(_change=None) -> None:
        values = {name: control.value for name, control in controls.items()}
        errors.clear_output()
        try:
            rgba = _render(draw, fig, values, lang)
            image.value = _png(rgba, fig.canvas.get_width_height(), None)
            if caption is not None:
                label.value = _caption_text(caption(**values), lang)
        except Exception:  # show the error under the figure, keep the controls alive
            with errors:
                raise

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([*controls.values(), label]), image, errors])
    box.add_class("dl-explorer")
    return box
