"""pff.explain and ``pff explain``: known answers on synthetic filters, then the whole run."""
from __future__ import annotations

import base64
import json
import math
import zlib

import numpy as np
import pytest
import torch

from pff import ops
from pff.cli import main
from pff.errors import PffError
from pff.explain import (
    Explanation,
    FilterPCA,
    assign_filters,
    cluster_filters,
    explain_image,
    filter_entropy,
    filter_pca,
    filter_spread,
    flow_field,
    flow_to_rgb,
    inspector_data,
    load_explainable,
    pca_loadings,
    salient_pixels,
)
from pff.explain.report import inspector_stride
from pff.io import write_image
from pff.models import ModelCard, create, save


def _delta_field(k: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K*K, H, W) deltas at random offsets, and the (dy, dx) offset of each pixel."""
    rng = np.random.default_rng(seed)
    r = k // 2
    dy = rng.integers(-r, r + 1, size=(h, w))
    dx = rng.integers(-r, r + 1, size=(h, w))
    filters = np.zeros((k * k, h, w), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    filters[(dy + r) * k + (dx + r), yy, xx] = 1.0
    return filters, dy, dx


# ----------------------------------------------------------------------------
# Flow and filter shape
# ----------------------------------------------------------------------------


def test_shifted_deltas_give_exactly_their_flow():
    filters, dy, dx = _delta_field(7, 13, 11)
    flow = flow_field(filters)
    assert flow.shape == (2, 13, 11)
    np.testing.assert_array_equal(flow[0], dx)
    np.testing.assert_array_equal(flow[1], dy)
    # ... and that flow is where the op reads from: out[y, x] = image[y + dy, x + dx].
    image = torch.rand(1, 1, 13, 11, dtype=torch.float64)
    out = ops.filter_flow(image, torch.from_numpy(filters).double()[None], padding="replicate")[0, 0]
    ys = np.clip(np.arange(13)[:, None] + dy, 0, 12)
    xs = np.clip(np.arange(11)[None, :] + dx, 0, 10)
    np.testing.assert_array_equal(out.numpy(), image[0, 0].numpy()[ys, xs])


def test_flow_of_dilated_deltas_scales_with_the_dilation():
    filters, dy, dx = _delta_field(5, 6, 8, seed=1)
    flow = flow_field(filters, dilation=3)
    np.testing.assert_array_equal(flow, 3 * np.stack([dx, dy]))


def test_flow_colours():
    still = flow_to_rgb(np.zeros((2, 3, 4)))
    assert still.dtype == np.uint8 and still.shape == (3, 4, 3)
    assert (still == 255).all()  # no motion is white
    right, left, down = (flow_to_rgb(np.array(v, dtype=float).reshape(2, 1, 1), max_norm=1.0)[0, 0]
                         for v in ([1, 0], [-1, 0], [0, 1]))  # fmt: skip
    assert right[0] == 255 and right[1] < 10  # red
    assert left[0] < 10 and left[2] > 200  # cyan-blue
    assert down[0] > 200 and down[1] > 150 and down[2] < 10  # yellow
    half = flow_to_rgb(np.array([0.5, 0.0]).reshape(2, 1, 1), max_norm=1.0)[0, 0]
    assert right[1] < half[1] < 255  # shorter vectors are paler
    with pytest.raises(PffError, match=r"\(2, H, W\)"):
        flow_to_rgb(np.zeros((3, 2, 2)))


def test_entropy_and_spread_known_values():
    k = 5
    filters = np.zeros((k * k, 1, 3), dtype=np.float32)
    filters[k * k // 2, 0, 0] = 1  # delta
    filters[:, 0, 1] = 1 / (k * k)  # box
    filters[2 * k + 0, 0, 2] = filters[2 * k + 4, 0, 2] = 0.5  # taps at dx = -2 and +2
    entropy = filter_entropy(filters)[0]
    np.testing.assert_allclose(entropy, [0.0, math.log2(k * k), 1.0], atol=1e-6)
    spread = filter_spread(filters)[0]
    np.testing.assert_allclose(spread[[0, 2]], [0.0, 2.0], atol=1e-6)
    assert filter_spread(filters, dilation=2)[0, 2] == pytest.approx(4.0)


def test_salient_pixels_pick_different_filters_first():
    filters = np.zeros((9, 16, 16), dtype=np.float32)
    filters[4] = 1.0  # identity everywhere ...
    filters[4, :, 8:] = 0.0
    filters[5, :, 8:] = 1.0  # ... a shift on the right half
    points = salient_pixels(filters, 4)
    sides = {x >= 8 for x, _ in points[:2]}
    assert sides == {True, False}
    assert len(salient_pixels(np.repeat(filters[:, :, :1], 16, axis=2), 4)) == 1  # all equal: one pick


def test_bad_filters_are_refused():
    with pytest.raises(PffError, match=r"K\*K for an odd K"):
        flow_field(np.zeros((8, 2, 2), dtype=np.float32))
    with pytest.raises(PffError, match=r"\(K\*K, H, W\)"):
        filter_entropy(np.zeros((9, 2), dtype=np.float32))


# ----------------------------------------------------------------------------
# PCA
# ----------------------------------------------------------------------------


def _rank3_filters(k: int = 7, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, K*K) filters drawn from a 3-dimensional family (plus its mean), and the basis (3, K*K)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((3, k * k))
    coeffs = rng.standard_normal((n, 3)) * np.array([3.0, 1.5, 0.5]) + np.array([1.0, 0.0, 0.0])
    return coeffs @ basis, basis


@pytest.mark.parametrize("center", [True, False])
def test_pca_of_a_rank3_family_finds_three_components_with_all_energy(center):
    rows, basis = _rank3_filters()
    pca = filter_pca([rows], center=center)
    assert pca.count == len(rows)
    assert pca.energy(3) == pytest.approx(1.0, abs=1e-12)
    assert pca.energy_ratio[2] > 1e-3  # three, not two
    assert pca.energy_ratio[3:].sum() < 1e-12
    assert pca.energy(10) == pytest.approx(1.0, abs=1e-12)
    # The top three span the family: the basis lies in their span.
    top = pca.components[:3]
    np.testing.assert_allclose(basis @ top.T @ top, basis, atol=1e-9)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(49), atol=1e-9)


def test_pca_accumulates_images_and_loadings_rebuild_the_filters():
    rows, _ = _rank3_filters(k=5, n=2 * 6 * 10)
    images = rows.T.reshape(25, 2, 6, 10).transpose(1, 0, 2, 3).astype(np.float32)  # 2 x (K*K, 6, 10)
    acc = FilterPCA()
    for filters in images:
        acc.add(filters)
    whole = filter_pca([rows])
    pca = acc.result()
    np.testing.assert_allclose(pca.eigenvalues, whole.eigenvalues, atol=1e-9)
    loadings = pca_loadings(images[0], pca, 3)  # (3, 6, 10)
    rebuilt = pca.mean[:, None, None] + np.einsum("nk,nhw->khw", pca.components[:3], loadings)
    np.testing.assert_allclose(rebuilt, images[0], atol=1e-4)
    assert pca.eigenfilters(10).shape == (10, 5, 5)
    with pytest.raises(PffError, match="49 taps"):
        acc.add(np.zeros((49, 2, 2), dtype=np.float32))
    with pytest.raises(PffError, match="no filters"):
        FilterPCA().result()


# ----------------------------------------------------------------------------
# k-means and t-SNE
# ----------------------------------------------------------------------------


def test_kmeans_finds_the_filter_types_and_colours_them_apart():
    k, types = 5, 6
    rng = np.random.default_rng(0)
    protos = np.eye(k * k, dtype=np.float32)[rng.choice(k * k, types, replace=False)]  # (6, K*K) deltas
    labels = np.repeat(np.arange(types), 10)[None, :].repeat(12, axis=0)  # (12, 60): 6 vertical bands
    filters = protos[labels].transpose(2, 0, 1)  # (K*K, 12, 60)
    clustering = cluster_filters([filters], types, max_samples=720, seed=0, progress=False)
    assert clustering.centroids.shape == (types, k * k)
    assert clustering.layout.shape == (types, 2) and clustering.layout.min() >= 0 and clustering.layout.max() <= 1
    found = assign_filters(filters, clustering.centroids)
    # Each band is one cluster and the bands are different clusters.
    assert all(len(np.unique(found[labels == t])) == 1 for t in range(types))
    assert len(np.unique(found)) == types
    assert len({tuple(c) for c in clustering.colours}) == types
    # Fewer filters than clusters: k shrinks to the sample.
    assert len(cluster_filters([filters[:, :1, :2]], 400, progress=False).centroids) == 2


# ----------------------------------------------------------------------------
# Model, inspector data, report, CLI
# ----------------------------------------------------------------------------


def _tiny_model(tmp_path, task="deblur", channels="rgb", kernel=5, kind_direct=False):
    torch.manual_seed(0)
    model = create("pff-tiny", channels=channels, kernel=kernel, **({"kind": "direct"} if kind_direct else {}))
    if not kind_direct:
        with torch.no_grad():  # the output layer starts at zero: give the filters some variety
            for p in model.predictor.out.parameters():
                p.copy_(0.3 * torch.randn(p.shape))
    folder = tmp_path / f"model-{task}-{channels}-{'direct' if kind_direct else 'pff'}"
    save(model, ModelCard(task=task, channels=channels, model=model.config), folder)
    return folder


def _image(h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def test_explain_image_keeps_the_models_filters(tmp_path):
    restorer = load_explainable(_tiny_model(tmp_path, channels="y", task="jpeg"), "jpeg", tile=8)
    expl = explain_image(restorer, _image(), name="x")
    assert expl.before.shape == (20, 24, 1) and expl.after.shape == (20, 24, 1)
    assert expl.filters.shape == (25, 20, 24) and expl.kernel == 5
    x = torch.from_numpy(expl.before.transpose(2, 0, 1))[None]
    with torch.no_grad():
        _, filters = restorer.model(x)
    np.testing.assert_allclose(expl.filters, filters[0].numpy(), atol=1e-5)  # tiled vs whole, float32
    # by construction the Restorer's own filters
    np.testing.assert_array_equal(restorer.filters(_image()), expl.filters.reshape(5, 5, 20, 24).transpose(2, 3, 0, 1))


def test_direct_models_and_wrong_tasks_are_refused(tmp_path):
    with pytest.raises(PffError, match="predicts pixels directly"):
        load_explainable(_tiny_model(tmp_path, kind_direct=True))
    with pytest.raises(PffError, match="restores 'deblur', not 'sr'"):
        load_explainable(_tiny_model(tmp_path), "sr")


def _unpack(text: str, dtype) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.dtype(dtype).newbyteorder("<"))


def test_inspector_data_round_trips_filters_within_quantisation():
    filters, _, _ = _delta_field(5, 9, 7)
    filters = filters * 0.9 - 0.05 + np.random.default_rng(1).random(filters.shape).astype(np.float32) * 0.1
    rng = np.random.default_rng(2)
    expl = Explanation("t", rng.random((9, 7, 3), dtype=np.float32), rng.random((9, 7, 3), dtype=np.float32), filters)
    data = inspector_data(expl)
    assert data["stride"] == 1 and data["grid"] == [9, 7]
    codes = _unpack(data["codes"], np.uint8).reshape(63, 25)
    low, step = _unpack(data["low"], np.float32), _unpack(data["step"], np.float32)
    decoded = low[:, None] + codes * step[:, None]  # (H*W, K*K)
    truth = filters.reshape(25, -1).T
    assert np.abs(decoded - truth).max() <= step.max() / 2 + 1e-6
    flow = _unpack(data["flow"], np.float32).reshape(63, 2)
    np.testing.assert_allclose(flow.T.reshape(2, 9, 7), flow_field(filters), atol=1e-6)
    before = _unpack(data["before"], np.uint8).reshape(9, 7, 3)
    np.testing.assert_array_equal(before, np.floor(expl.before * 255 + 0.5).astype(np.uint8))
    # A budget smaller than the filters puts them on a grid.
    assert inspector_stride(100, 80, 17, 289 * 100 * 80) == 1
    s = inspector_stride(100, 80, 17, 100_000)
    assert math.ceil(100 / s) * math.ceil(80 / s) * 289 <= 100_000 < math.ceil(100 / (s - 1)) * math.ceil(80 / (s - 1)) * 289


def test_cli_writes_figures_report_and_summary(tmp_path, capsys):
    model = _tiny_model(tmp_path)
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"im{i}.png")
        write_image(paths[-1], _image(seed=i))
    out = tmp_path / "out"
    rc = main(["explain", *map(str, paths), "--task", "deblur", "--model", str(model), "-o", str(out),
               "--clusters", "8", "--samples", "600", "--at", "3,4", "--at", "20,10"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    for name in ("im0", "im1"):
        for fig in ("flow", "shape", "filters", "loadings", "clusters"):
            assert (out / name / f"{fig}.png").stat().st_size > 1000
    for fig in ("pca_eigenfilters", "pca_energy", "kmeans_tsne"):
        assert (out / f"{fig}.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["filters"] == 2 * 20 * 24 and summary["kernel"] == 5
    assert summary["kmeans"] == {"k": 8, "samples": 600}
    assert summary["images"][0]["points"] == [[3, 4], [20, 10]]
    assert 0 < summary["pca"]["energy_centred"] <= 1
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 * 5 + 3
    assert "<script src" not in html and "http" not in html.split("<script>")[1]  # opens offline


def test_cli_errors(tmp_path, capsys):
    image = tmp_path / "a.png"
    write_image(image, _image())
    model = str(_tiny_model(tmp_path))
    cases = [
        (["--model", model, "--at", "30,1"], "outside 'a' (24x20"),
        (["--model", model, "--at", "3"], "X,Y"),
        (["--model", "no-such-model"], "no-such-model"),
        (["--model", str(_tiny_model(tmp_path, kind_direct=True))], "no filters to explain"),
        (["--model", model, "--clusters", "-1"], "--clusters must be >= 0"),
    ]
    for extra, message in cases:
        rc = main(["explain", str(image), "--task", "deblur", "-o", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "pff: error: " in err and message in err, (extra, err)


def test_cli_help_says_sr_takes_the_low_resolution_image(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "LOW-resolution" in capsys.readouterr().out


def test_cli_crop_and_size_limit(tmp_path, capsys):
    image = tmp_path / "a.png"
    write_image(image, _image())  # 24x20
    model = str(_tiny_model(tmp_path))
    base = ["explain", str(image), "--task", "deblur", "--model", model, "--clusters", "0"]
    cases = [
        (["--crop", "20,0,8,8"], "outside 'a' (24x20)"),
        (["--crop", "1,2,3"], "X,Y,W,H"),
        (["--tile", "-1"], "--tile must be >= 0"),
    ]
    for extra, message in cases:
        rc = main([*base, "-o", str(tmp_path / "bad"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err, (extra, err)
        assert not (tmp_path / "bad").exists()
    rc = main([*base, "-o", str(tmp_path / "o"), "--crop", "2,3,16,12", "--tile", "8"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    points = summary["images"][0]["points"]  # salient pixels, in the 16x12 crop
    assert points and all(0 <= x < 16 and 0 <= y < 12 for x, y in points)
