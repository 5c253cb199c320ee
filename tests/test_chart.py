"""``gaitpose.report.chart``: marks land where the data says, translucent bands blend, labels are drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gaitpose.report.chart import Figure, nice_ticks


def _render(tmp_path: Path, build) -> np.ndarray:
    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.subplots(1, 1)
    build(fig, ax)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.9, bottom=0.1)
    out = tmp_path / "c.png"
    fig.savefig(out, dpi=100, format="png")
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (300, 400, 3)
    return img


def test_line_band_and_marker_are_drawn_at_their_data_coordinates(tmp_path: Path) -> None:
    def build(_fig, ax):
        ax.fill_between([0, 10], [2, 2], [4, 4], color="#00ff00", alpha=0.25, lw=0, label="band")
        ax.plot([0, 10], [8, 8], color="#ff0000", lw=2, label="line")
        ax.axvline(5, color="#0000ff", lw=1.5, ls="--")
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.legend(loc="lower right", fontsize=7)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("degrees")
        ax.set_title("title")

    img = _render(tmp_path, build)
    # panel: x 40..360 px, y 30..270 px; data (x, y) -> (40 + 32 x, 270 - 24 y)
    red = (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)
    ys = np.nonzero(red[:, 100:300].any(axis=1))[0]
    assert ys.size and abs(ys.mean() - (270 - 24 * 8)) <= 2, ys
    band = img[270 - 24 * 3, 60:180]  # inside the band, left of the marker and the legend
    assert (band[:, 1] > 240).all() and (band[:, 0] < 235).all() and (band[:, 0] > 150).all(), "band not blended"
    blue = (img[..., 2] > 180) & (img[..., 0] < 120)
    xs = np.nonzero(blue[40:260].any(axis=0))[0]
    assert xs.size and abs(np.median(xs) - (40 + 32 * 5)) <= 2
    assert 0.3 < blue[40:260, 198:203].any(axis=1).mean() < 0.95, "dashed line is solid or missing"
    dark = (img.sum(axis=2) < 200)
    assert dark[272:300].any() and dark[:, :38].any() and dark[:28].any()  # x labels, y labels, title


def test_nan_breaks_the_line_and_limits_come_from_the_data(tmp_path: Path) -> None:
    def build(_fig, ax):
        y = np.array([1.0, 1.0, np.nan, 3.0, 3.0])
        ax.plot(np.arange(5), y, color="#ff0000", lw=2)

    img = _render(tmp_path, build)
    red = (img[..., 0] > 200) & (img[..., 1] < 80)
    cols = red.any(axis=0)
    x_of = lambda x: 40 + (x + 0.2) / 4.4 * 320  # noqa: E731 - 5 % margins
    assert cols[round(x_of(0.5))] and cols[round(x_of(3.5))] and not cols[round(x_of(2))]


@pytest.mark.parametrize(("lo", "hi"), [(0, 100), (-31.2, 18.7), (0.2, 0.9), (-10, -10)])
def test_nice_ticks_are_round_and_inside(lo: float, hi: float) -> None:
    t = nice_ticks(lo, hi)
    assert len(t) >= 1 and (t >= lo - 1e-9).all() and (t <= hi + 1e-9).all()
    if len(t) > 1:
        step = t[1] - t[0]
        assert np.allclose(np.diff(t), step) and 2 <= len(t) <= 8
