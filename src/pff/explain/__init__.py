"""What a PFF model does, in numbers, figures and an HTML report (paper section 5).

Every piece is a plain function on numpy arrays of per-pixel filters
``(K*K, H, W)`` (the layout of :mod:`pff.ops`):

- :func:`explain_image` runs a model on an image through the Restorer: input, output, filters.
- :func:`flow_field`, :func:`flow_to_rgb`, :func:`filter_entropy`,
  :func:`filter_spread`, :func:`salient_pixels`: per-pixel maps.
- :func:`filter_pca`, :class:`FilterPCA`, :func:`pca_loadings`: eigenfilters,
  the energy they capture and each pixel's loading on them.
- :func:`cluster_filters`, :func:`cluster_map`: k-means of the filters, a
  t-SNE layout of the centroids and a pixel map coloured by it (figure 6).
- :mod:`pff.explain.figures`: matplotlib figures of all of the above.
- :func:`render_report`, :func:`explain_images`: the HTML report and the
  whole ``pff explain`` run.

matplotlib and scikit-learn (regular dependencies) are imported only by the
functions that draw or cluster.
"""
from __future__ import annotations

from pff.explain.cluster import (
    Clustering,
    assign_filters,
    cluster_filters,
    cluster_map,
    colour_chart,
    layout_colours,
)
from pff.explain.flow import (
    filter_at,
    filter_entropy,
    filter_spread,
    flow_field,
    flow_legend,
    flow_to_rgb,
    salient_pixels,
)
from pff.explain.inference import Explanation, explain_image, load_explainable
from pff.explain.pca import FilterPCA, PCAResult, filter_pca, pca_loadings
from pff.explain.pipeline import ExplainResult, explain_images
from pff.explain.report import ImageSection, inspector_data, render_report

__all__ = [
    "Clustering",
    "ExplainResult",
    "Explanation",
    "FilterPCA",
    "ImageSection",
    "PCAResult",
    "assign_filters",
    "cluster_filters",
    "cluster_map",
    "colour_chart",
    "explain_image",
    "explain_images",
    "filter_at",
    "filter_entropy",
    "filter_pca",
    "filter_spread",
    "flow_field",
    "flow_legend",
    "flow_to_rgb",
    "inspector_data",
    "layout_colours",
    "load_explainable",
    "pca_loadings",
    "render_report",
    "salient_pixels",
]
