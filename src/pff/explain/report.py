"""One self-contained HTML report: figures inline, and a pixel inspector per image.

The report opens offline: figures are inline PNGs, and the inspector's data
(input and output pixels, filters, expected flow) is deflated, base64-coded
JSON read by the plain script in ``report.js`` (``DecompressionStream``, in
every current browser). Filters are quantised to uint8 per pixel (with that
pixel's minimum and step as float32, so the error is under 1/510 of the
filter's range) and, for large images, kept on a grid every ``stride``
pixels so each image's filters take at most ``max_filter_bytes``.
"""
from __future__ import annotations

import base64
import html
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from pff.explain.figures import to_display
from pff.explain.flow import flow_field
from pff.explain.inference import Explanation

__all__ = ["ImageSection", "inspector_data", "inspector_stride", "render_report"]


@dataclass(frozen=True)
class ImageSection:
    """One image of the report: its explanation and its figures as (caption, PNG bytes)."""

    explanation: Explanation
    figures: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


def _pack(array: np.ndarray) -> str:
    """Little-endian bytes of ``array``, deflated and base64-coded."""
    data = np.ascontiguousarray(array)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    return base64.b64encode(zlib.compress(data.tobytes(), 6)).decode("ascii")


def inspector_stride(height: int, width: int, kernel: int, max_filter_bytes: int) -> int:
    """Grid spacing s >= 1 so that ceil(H/s) * ceil(W/s) * K*K bytes fit in ``max_filter_bytes``."""
    s = max(1, math.ceil(math.sqrt(height * width * kernel * kernel / max(max_filter_bytes, 1))))
    while math.ceil(height / s) * math.ceil(width / s) * kernel * kernel > max_filter_bytes:
        s += 1
    return s


def _quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D) float -> (uint8 codes (N, D), minimum (N,), step (N,)): value = min + code * step."""
    lo = rows.min(axis=1)
    step = (rows.max(axis=1) - lo) / 255.0
    safe = np.where(step > 0, step, 1.0)
    codes = np.clip(np.round((rows - lo[:, None]) / safe[:, None]), 0, 255).astype(np.uint8)
    return codes, lo.astype(np.float32), step.astype(np.float32)


def inspector_data(expl: Explanation, *, max_filter_bytes: int = 8_000_000) -> dict[str, object]:
    """The inspector's data of one image, JSON-ready.

    Keys: name, width, height, channels, kernel, stride, grid (rows, cols),
    before / after ((H, W, C) uint8), codes ((rows*cols, K*K) uint8),
    low / step ((rows*cols,) float32), flow ((rows*cols, 2) float32, x then
    y), each packed by ``_pack``. Grid cell (i, j) holds the filter of pixel
    (min(j*s + s//2, W-1), min(i*s + s//2, H-1)); with s = 1 every pixel.
    """
    h, w = expl.shape
    k = expl.kernel
    s = inspector_stride(h, w, k, max_filter_bytes)
    ys = np.minimum(np.arange(0, h, s) + s // 2, h - 1)
    xs = np.minimum(np.arange(0, w, s) + s // 2, w - 1)
    sub = expl.filters[:, ys][:, :, xs]  # (K*K, rows, cols)
    rows = sub.reshape(k * k, -1).T.astype(np.float64)  # (rows*cols, K*K)
    codes, low, step = _quantise(rows)
    flow = flow_field(sub, dilation=expl.dilation).reshape(2, -1).T  # (rows*cols, 2)
    return {
        "name": expl.name,
        "width": w,
        "height": h,
        "channels": int(expl.before.shape[2]),
        "kernel": k,
        "stride": s,
        "grid": [len(ys), len(xs)],
        "before": _pack(to_display(expl.before)[..., : expl.before.shape[2]]),
        "after": _pack(to_display(expl.after)[..., : expl.after.shape[2]]),
        "codes": _pack(codes),
        "low": _pack(low),
        "step": _pack(step),
        "flow": _pack(flow.astype(np.float32)),
    }


def _asset(name: str) -> str:
    return resources.files("pff.explain").joinpath(name).read_text(encoding="utf-8")


def _figure_html(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    cap = html.escape(caption)
    return f'<figure><img alt="{cap}" src="data:image/png;base64,{data}"><figcaption>{cap}</figcaption></figure>'


def _zoom(height: int, width: int) -> float:
    """Display scale of the inspector images: small ones enlarged, large ones fit 480 px."""
    side = max(height, width)
    return 480 / side if side > 480 else float(max(1, 320 // side))


def _section_html(index: int, section: ImageSection, data: dict[str, object]) -> str:
    expl = section.explanation
    h, w = expl.shape
    z = _zoom(h, w)
    size = f'style="width:{w * z:.0f}px;height:{h * z:.0f}px"'
    note = (
        "every pixel's filter"
        if data["stride"] == 1
        else f"filters every {data['stride']} px: the nearest sampled pixel's filter is shown"
    )
    figures = "\n".join(_figure_html(c, p) for c, p in section.figures)
    return f"""
<section class="image" id="image-{index}">
<h2>{html.escape(expl.name)} <small>{w}x{h}, K={expl.kernel}</small></h2>
<div class="inspector" data-index="{index}">
  <div class="views">
    <div class="view"><div class="label">input (point at a pixel; click to pin)</div>
      <div class="stage"><canvas class="before" width="{w}" height="{h}" {size}></canvas><div class="mark"></div></div></div>
    <div class="view"><div class="label">output</div>
      <div class="stage"><canvas class="after" width="{w}" height="{h}" {size}></canvas><div class="mark"></div></div></div>
  </div>
  <div class="panel">
    <canvas class="filter" width="{expl.kernel}" height="{expl.kernel}"></canvas>
    <div class="readout">point at the input to see a pixel's filter</div>
    <div class="note">{html.escape(note)}</div>
  </div>
</div>
{figures}
</section>"""


def render_report(
    sections: Sequence[ImageSection],
    overall: Sequence[tuple[str, bytes]] = (),
    *,
    title: str = "pff explain",
    meta: Sequence[tuple[str, str]] = (),
    max_filter_bytes: int = 8_000_000,
) -> str:
    """The report as one HTML string.

    ``sections``: one per image (inspector + its figures); ``overall``:
    figures over all images (PCA, k-means); ``meta``: (label, value) rows
    shown at the top (model, task, ...).
    """
    data = [inspector_data(s.explanation, max_filter_bytes=max_filter_bytes) for s in sections]
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in meta)
    body = "\n".join(_section_html(i, s, d) for i, (s, d) in enumerate(zip(sections, data)))
    over = "\n".join(_figure_html(c, p) for c, p in overall)
    over_html = f'<section class="overall"><h2>All images</h2>\n{over}\n</section>' if over else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_asset("report.css")}</style></head>
<body data-ready="0">
<h1>{html.escape(title)}</h1>
<table class="meta">{rows}</table>
{body}
{over_html}
<script type="application/json" id="pff-data">{payload}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
