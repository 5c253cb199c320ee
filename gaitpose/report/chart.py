"""A small line-chart renderer (Pillow) with the slice of matplotlib's Figure/Axes API the report uses.

Why: matplotlib costs about a second of CPU per analysis (half a second to import, half to lay out
and draw two figures), a quarter of ``gaitpose analyze``'s whole job on a short clip. The report's
charts are lines, bands, vertical markers, labels and a legend; Pillow (already a matplotlib
dependency) draws those in a few tens of milliseconds. ``gaitpose.report.plots`` builds its figures
through :class:`Figure` exactly as it would through ``matplotlib.figure.Figure``; everything is
drawn at twice the size and downsampled, for smooth lines and text.

Supported: Figure(figsize, dpi), subplots, subplots_adjust, tight_layout (fixed margins), text,
savefig; Axes.plot, fill_between, axvline, text (data or transAxes), legend, set_title/xlabel/
ylabel/xlim/ylim, grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Axes", "Figure"]

SS = 2  # supersampling factor
NAMED = {"grey": "#808080", "gray": "#808080", "black": "#000000", "white": "#ffffff", "red": "#d62728",
         "blue": "#1f77b4", "green": "#2ca02c", "orange": "#ff7f0e"}
DASHES = {"-": None, "solid": None, "--": (3.7, 1.6), "dashed": (3.7, 1.6), ":": (1.0, 1.65), "dotted": (1.0, 1.65),
          "-.": (6.4, 1.6, 1.0, 1.6)}


def _rgba(colour: Any, alpha: float | None = None) -> tuple[int, int, int, int]:
    """"#rrggbb", "#rgb" or a basic colour name (anything else draws black)."""
    c = NAMED.get(str(colour), str(colour))
    if len(c) == 4 and c.startswith("#"):
        c = "#" + "".join(ch * 2 for ch in c[1:])
    r, g, b = (int(c[i : i + 2], 16) for i in (1, 3, 5)) if len(c) == 7 and c.startswith("#") else (0, 0, 0)
    return r, g, b, round(255 * (1.0 if alpha is None else float(alpha)))


_FONTS: dict[int, Any] = {}


def _font(size_px: float) -> Any:
    """Pillow's bundled scalable font (no font files to ship), cached per pixel size."""
    from PIL import ImageFont

    key = max(6, round(size_px))
    if key not in _FONTS:
        _FONTS[key] = ImageFont.load_default(size=key)
    return _FONTS[key]


def nice_ticks(lo: float, hi: float, max_ticks: int = 8) -> np.ndarray:
    """Round tick values inside [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo]) if math.isfinite(lo) else np.array([])
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw - 1e-12)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return np.round(ticks, 10)


def _fmt_tick(v: float, step: float) -> str:
    """As many decimals as the tick step has (0.25 -> 2, 2.5 -> 1, 10 -> 0)."""
    nd = len(np.format_float_positional(step, precision=8, trim="-").partition(".")[2]) if math.isfinite(step) else 0
    return f"{v:.{nd}f}"


@dataclass
class _Artist:
    kind: str  # line | band | vline | text
    x: Any = None
    y: Any = None
    y2: Any = None
    colour: Any = "black"
    alpha: float | None = None
    lw: float = 1.5
    ls: str = "-"
    label: str | None = None
    text: str = ""
    ha: str = "left"
    va: str = "baseline"
    fontsize: float = 10.0
    axes_coords: bool = False


@dataclass
class Axes:
    """One panel; data limits are taken from what was drawn (5 % margins) unless set."""

    artists: list[_Artist] = field(default_factory=list)
    title: tuple[str, float] | None = None
    xlabel: str = ""
    ylabel: str = ""
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    grid_alpha: float | None = None
    legend_spec: tuple[str, float] | None = None
    share: list[Axes] | None = None
    show_xticklabels: bool = True
    transAxes: object = field(default_factory=object)  # matplotlib's name: ax.text(..., transform=ax.transAxes)

    def plot(self, x: Any, y: Any, color: Any = "#1f77b4", lw: float = 1.5, ls: str = "-", label: str | None = None,
             alpha: float | None = None, **_: Any) -> None:
        self.artists.append(_Artist("line", np.asarray(x, float), np.asarray(y, float), colour=color, lw=lw, ls=ls,
                                    label=label, alpha=alpha))

    def fill_between(self, x: Any, y1: Any, y2: Any, color: Any = "#1f77b4", alpha: float | None = None,
                     lw: float = 0, label: str | None = None, **_: Any) -> None:
        self.artists.append(_Artist("band", np.asarray(x, float), np.broadcast_to(np.asarray(y1, float), np.shape(x)),
                                    np.broadcast_to(np.asarray(y2, float), np.shape(x)), colour=color,
                                    alpha=alpha, label=label))

    def axvline(self, x: float, color: Any = "black", lw: float = 1.0, ls: str = "-", alpha: float | None = None,
                **_: Any) -> None:
        self.artists.append(_Artist("vline", float(x), colour=color, lw=lw, ls=ls, alpha=alpha))

    def text(self, x: float, y: float, s: str, ha: str = "left", va: str = "baseline", fontsize: float = 10.0,
             color: Any = "black", transform: Any = None, **_: Any) -> None:
        self.artists.append(_Artist("text", float(x), float(y), text=str(s), ha=ha, va=va, fontsize=float(fontsize),
                                    colour=color, axes_coords=transform is self.transAxes))

    def legend(self, loc: str = "upper right", fontsize: float = 10.0, **_: Any) -> None:
        self.legend_spec = (loc, float(fontsize))

    def set_title(self, s: str, fontsize: float = 12.0, **_: Any) -> None:
        self.title = (str(s), float(fontsize))

    def set_xlabel(self, s: str, **_: Any) -> None:
        self.xlabel = str(s)

    def set_ylabel(self, s: str, **_: Any) -> None:
        self.ylabel = str(s)

    def set_xlim(self, lo: float, hi: float) -> None:
        for ax in self.share or [self]:
            ax.xlim = (float(lo), float(hi))

    def set_ylim(self, lo: float, hi: float) -> None:
        self.ylim = (float(lo), float(hi))

    def grid(self, visible: bool = True, alpha: float = 1.0, **_: Any) -> None:
        self.grid_alpha = float(alpha) if visible else None

    # -- limits --------------------------------------------------------------------------------
    def _data_range(self, axis: str) -> tuple[float, float]:
        vals = []
        for a in self.artists:
            if a.kind == "line":
                vals.append(a.x if axis == "x" else a.y)
            elif a.kind == "band":
                vals += [a.x] if axis == "x" else [a.y, a.y2]
            elif a.kind == "vline" and axis == "x":
                vals.append(np.array([a.x]))
        v = np.concatenate([np.ravel(x) for x in vals]) if vals else np.array([])
        v = v[np.isfinite(v)]
        return (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)

    def limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        def padded(lo: float, hi: float) -> tuple[float, float]:
            if hi <= lo:
                return lo - 0.5, hi + 0.5
            m = 0.05 * (hi - lo)
            return lo - m, hi + m

        ranges = [ax._data_range("x") for ax in (self.share or [self])]
        xl = self.xlim or padded(min(r[0] for r in ranges), max(r[1] for r in ranges))
        yl = self.ylim if self.ylim is not None else padded(*self._data_range("y"))
        return xl, yl


class Figure:
    """A figure of ``figsize`` inches at ``dpi``, drawn with Pillow when saved."""

    def __init__(self, figsize: tuple[float, float] = (6.4, 4.8), dpi: float = 100, **_: Any) -> None:
        self.figsize = (float(figsize[0]), float(figsize[1]))
        self.dpi = float(dpi)
        self.axes: list[Axes] = []
        self.grid_shape = (1, 1)
        self.adjust = {"left": 0.08, "right": 0.98, "top": 0.92, "bottom": 0.1, "hspace": 0.25, "wspace": 0.3}
        self.texts: list[_Artist] = []

    def subplots(self, nrows: int = 1, ncols: int = 1, sharex: bool = False, **_: Any) -> Any:
        self.grid_shape = (int(nrows), int(ncols))
        self.axes = [Axes() for _ in range(nrows * ncols)]
        if sharex:
            for i, ax in enumerate(self.axes):
                ax.share = self.axes
                ax.show_xticklabels = i // ncols == nrows - 1
        return self.axes[0] if len(self.axes) == 1 else list(self.axes)

    def subplots_adjust(self, **kw: float) -> None:
        self.adjust.update({k: float(v) for k, v in kw.items() if v is not None})

    def tight_layout(self, **_: Any) -> None:
        """Fixed margins: there is no text measuring here."""

    def text(self, x: float, y: float, s: str, ha: str = "left", fontsize: float = 10.0, color: Any = "black",
             va: str = "bottom", **_: Any) -> None:
        self.texts.append(_Artist("text", float(x), float(y), text=str(s), ha=ha, va=va, fontsize=float(fontsize),
                                  colour=color))

    def savefig(self, path: str | os.PathLike[str] | Any, dpi: float | None = None, format: str = "png",
                **_: Any) -> None:
        if dpi is not None:
            self.dpi = float(dpi)
        _Renderer(self).draw().save(path, format=format.upper())


class _Renderer:
    def __init__(self, fig: Figure) -> None:
        from PIL import Image, ImageDraw

        self.fig = fig
        self.k = fig.dpi / 72.0 * SS  # pixels per point, supersampled
        self.w, self.h = round(fig.figsize[0] * fig.dpi) * SS, round(fig.figsize[1] * fig.dpi) * SS
        self.img = Image.new("RGB", (self.w, self.h), (255, 255, 255))  # RGB: translucent fills blend
        self.draw_ = ImageDraw.Draw(self.img, "RGBA")

    # -- primitives ------------------------------------------------------------------------------
    def _text(self, xy: tuple[float, float], s: str, size_pt: float, colour: Any = "black", ha: str = "left",
              va: str = "baseline", rotate: bool = False) -> None:
        from PIL import Image, ImageDraw

        font = _font(size_pt * self.k)
        l, t, r, b = font.getbbox(s)  # noqa: E741
        w, h = r - l, b - t
        if rotate:
            tile = Image.new("RGBA", (w + 4, h + 4), (255, 255, 255, 0))
            ImageDraw.Draw(tile).text((2 - l, 2 - t), s, font=font, fill=_rgba(colour))
            tile = tile.rotate(90, expand=True)
            x = xy[0] - tile.width / 2 if ha == "center" else xy[0]
            y = xy[1] - tile.height / 2
            self.img.paste(tile, (round(x), round(y)), tile)
            return
        x = {"left": xy[0], "center": xy[0] - w / 2, "right": xy[0] - w}.get(ha, xy[0])
        asc = font.getmetrics()[0]
        y = {"top": xy[1], "center": xy[1] - h / 2, "bottom": xy[1] - h, "baseline": xy[1] - asc + t}.get(va, xy[1])
        self.draw_.text((x - l, y - t), s, font=font, fill=_rgba(colour))

    def _polyline(self, pts: np.ndarray, colour: Any, lw_pt: float, ls: str, alpha: float | None) -> None:
        width = max(1, round(lw_pt * self.k))
        fill = _rgba(colour, alpha)
        dash = DASHES.get(ls)
        if dash is None:
            self.draw_.line([tuple(p) for p in pts], fill=fill, width=width, joint="curve")
            return
        pattern = [d * lw_pt * self.k for d in dash]
        seg = np.diff(pts, axis=0)
        lengths = np.hypot(seg[:, 0], seg[:, 1])
        i_pat, on, remaining = 0, True, pattern[0]
        for p0, d, n in zip(pts[:-1], seg, lengths, strict=True):
            t = 0.0
            while t < n:
                step = min(remaining, n - t)
                if on:
                    a, b = p0 + d * (t / n), p0 + d * ((t + step) / n)
                    self.draw_.line([tuple(a), tuple(b)], fill=fill, width=width)
                t += step
                remaining -= step
                if remaining <= 1e-9:
                    i_pat = (i_pat + 1) % len(pattern)
                    remaining, on = pattern[i_pat], not on

    # -- figure ----------------------------------------------------------------------------------
    def draw(self) -> Any:
        fig = self.fig
        nr, nc = fig.grid_shape
        a = fig.adjust
        left, right = a["left"] * self.w, a["right"] * self.w
        top, bottom = (1 - a["top"]) * self.h, (1 - a["bottom"]) * self.h
        cw = (right - left) / (nc + a["wspace"] * (nc - 1))
        ch = (bottom - top) / (nr + a["hspace"] * (nr - 1))
        for i, ax in enumerate(fig.axes):
            r, c = divmod(i, nc)
            x0 = left + c * cw * (1 + a["wspace"])
            y0 = top + r * ch * (1 + a["hspace"])
            self._axes(ax, (x0, y0, x0 + cw, y0 + ch))
        for t in fig.texts:
            self._text((t.x * self.w, (1 - t.y) * self.h), t.text, t.fontsize, t.colour, t.ha, t.va)
        from PIL import Image

        return self.img.resize((self.w // SS, self.h // SS), Image.Resampling.LANCZOS)

    def _axes(self, ax: Axes, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = box
        (xa, xb), (ya, yb) = ax.limits()

        def tx(x: Any) -> Any:
            return x0 + (np.asarray(x, float) - xa) / (xb - xa) * (x1 - x0)

        def ty(y: Any) -> Any:
            return y1 - (np.asarray(y, float) - ya) / (yb - ya) * (y1 - y0)

        xt, yt = nice_ticks(xa, xb), nice_ticks(ya, yb)
        fs = 10.0
        if ax.grid_alpha is not None:
            g = _rgba("#b0b0b0", ax.grid_alpha)
            for v in xt:
                self.draw_.line([(tx(v), y0), (tx(v), y1)], fill=g, width=max(1, round(0.8 * self.k)))
            for v in yt:
                self.draw_.line([(x0, ty(v)), (x1, ty(v))], fill=g, width=max(1, round(0.8 * self.k)))
        from PIL import Image, ImageDraw

        # Bands, then lines, each on a layer the size of the panel (clipped to it), composited once.
        bx0, by0 = int(x0), int(y0)
        size = (int(x1) - bx0 + 1, int(y1) - by0 + 1)
        off = np.array([bx0, by0], float)
        band_layer = Image.new("RGBA", size, (0, 0, 0, 0))
        bdraw = ImageDraw.Draw(band_layer, "RGBA")
        for art in ax.artists:
            if art.kind == "band":
                ok = np.isfinite(art.x) & np.isfinite(art.y) & np.isfinite(art.y2)
                for s, e in _runs(ok):
                    xs, lo, hi = tx(art.x[s:e]) - bx0, ty(art.y[s:e]) - by0, ty(art.y2[s:e]) - by0
                    poly = [*zip(xs, hi, strict=True), *zip(xs[::-1], lo[::-1], strict=True)]
                    if len(poly) >= 3:
                        bdraw.polygon([(float(p), float(q)) for p, q in poly], fill=_rgba(art.colour, art.alpha or 1))
        line_layer = Image.new("RGBA", size, (0, 0, 0, 0))
        saved, self.draw_ = self.draw_, ImageDraw.Draw(line_layer, "RGBA")
        for art in ax.artists:
            if art.kind == "line":
                ok = np.isfinite(art.x) & np.isfinite(art.y)
                for s, e in _runs(ok):
                    if e - s >= 2:
                        self._polyline(np.column_stack([tx(art.x[s:e]), ty(art.y[s:e])]) - off, art.colour, art.lw,
                                       art.ls, art.alpha)
            elif art.kind == "vline" and xa <= art.x <= xb:
                self._polyline(np.array([[tx(art.x), y0], [tx(art.x), y1]]) - off, art.colour, art.lw, art.ls,
                               art.alpha)
        self.draw_ = saved
        panel = self.img.crop((bx0, by0, bx0 + size[0], by0 + size[1])).convert("RGBA")
        panel.alpha_composite(band_layer)
        panel.alpha_composite(line_layer)
        self.img.paste(panel.convert("RGB"), (bx0, by0))
        # frame, ticks, labels
        frame = max(1, round(0.8 * self.k))
        self.draw_.rectangle((x0, y0, x1, y1), outline=(0, 0, 0, 255), width=frame)
        tick = 3.5 * self.k
        xstep, ystep = (float(t[1] - t[0]) if len(t) > 1 else 1.0 for t in (xt, yt))
        for v in xt:
            self.draw_.line([(tx(v), y1), (tx(v), y1 + tick)], fill=(0, 0, 0, 255), width=frame)
            if ax.show_xticklabels:
                self._text((tx(v), y1 + tick + 2 * self.k), _fmt_tick(v, xstep), fs, ha="center", va="top")
        ylabel_x = x0
        for v in yt:
            self.draw_.line([(x0 - tick, ty(v)), (x0, ty(v))], fill=(0, 0, 0, 255), width=frame)
            label = _fmt_tick(v, ystep)
            self._text((x0 - tick - 2 * self.k, ty(v)), label, fs, ha="right", va="center")
            ylabel_x = min(ylabel_x, x0 - tick - 2 * self.k - _font(fs * self.k).getlength(label))
        if ax.xlabel and ax.show_xticklabels:
            self._text(((x0 + x1) / 2, y1 + tick + 4 * self.k + fs * self.k), ax.xlabel, fs, ha="center", va="top")
        if ax.ylabel:
            self._text((ylabel_x - 4 * self.k - fs * self.k * 1.2, (y0 + y1) / 2), ax.ylabel, fs, ha="left",
                       rotate=True)
        if ax.title:
            self._text(((x0 + x1) / 2, y0 - 6 * self.k), ax.title[0], ax.title[1], ha="center", va="bottom")
        for art in ax.artists:
            if art.kind == "text":
                px = x0 + art.x * (x1 - x0) if art.axes_coords else float(tx(art.x))
                py = y1 - art.y * (y1 - y0) if art.axes_coords else float(ty(art.y))
                self._text((px, py), art.text, art.fontsize, art.colour, art.ha,
                           {"baseline": "bottom"}.get(art.va, art.va))
        if ax.legend_spec:
            self._legend(ax, (x0, y0, x1, y1))

    def _legend(self, ax: Axes, box: tuple[float, float, float, float]) -> None:
        loc, fs = ax.legend_spec or ("upper right", 10.0)
        items = [a for a in ax.artists if a.label and a.kind in ("line", "band")]
        if not items:
            return
        font, row, sample, pad = _font(fs * self.k), 1.45 * fs * self.k, 2.0 * fs * self.k, 0.5 * fs * self.k
        width = sample + pad * 3 + max(font.getlength(a.label or "") for a in items)
        height = row * len(items) + pad * 1.2
        (x0, y0, x1, y1) = box
        lx = x1 - width - pad if "right" in loc else x0 + pad
        ly = y1 - height - pad if "lower" in loc else y0 + pad
        self.draw_.rounded_rectangle((lx, ly, lx + width, ly + height), radius=pad * 0.6, fill=(255, 255, 255, 204),
                                     outline=(204, 204, 204, 255), width=max(1, round(0.8 * self.k)))
        for i, a in enumerate(items):
            cy = ly + pad * 0.6 + row * (i + 0.5)
            if a.kind == "band":
                self.draw_.rectangle((lx + pad, cy - row * 0.3, lx + pad + sample, cy + row * 0.3),
                                     fill=_rgba(a.colour, a.alpha or 1))
            else:
                self._polyline(np.array([[lx + pad, cy], [lx + pad + sample, cy]]), a.colour, a.lw, a.ls, a.alpha)
            self._text((lx + pad * 2 + sample, cy), a.label or "", fs, ha="left", va="center")


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of runs of True."""
    d = np.diff(np.concatenate([[0], np.asarray(ok, np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))
