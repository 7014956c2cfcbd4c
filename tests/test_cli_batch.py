"""pff.cli.batch: which input goes where, refused before anything is written; restore_file."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from pff.cli.batch import Job, plan, restore_file
from pff.errors import PffError
from pff.models import ModelCard, create
from pff.restore import Restorer


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (4, 4, 3)).astype(np.uint8)).save(path)


def _tree(root):
    """Every path under ``root`` with its bytes (None for a folder, "special" for a FIFO)."""
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() if p.is_file() else "special"
        for p in sorted(root.rglob("*"))
    }


def test_plan_paths(tmp_path):
    for name in ("in/a.png", "in/sub/b.jpg"):
        _png(tmp_path / name)
    one = tmp_path / "in" / "a.png"
    assert plan([one], None, None, suffix="-r") == [Job(one, tmp_path / "in" / "a-r.png")]
    assert plan([one], tmp_path / "x.png", tmp_path / "f.png", suffix="-r") == [Job(one, tmp_path / "x.png", tmp_path / "f.png")]
    jobs = plan([tmp_path / "in"], tmp_path / "out", tmp_path / "flows", suffix="-r")
    assert [j.target.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["a.png", "sub/b.jpg"]
    assert [j.flow.relative_to(tmp_path / "flows").as_posix() for j in jobs] == ["a-flow.png", "sub/b-flow.png"]
    # Several inputs: each folder keeps its own name under the output folder.
    _png(tmp_path / "other" / "c.png")
    jobs = plan([tmp_path / "in", tmp_path / "other"], tmp_path / "out", None, suffix="-r")
    assert [j.target.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["in/a.png", "in/sub/b.jpg", "other/c.png"]


def test_plan_refusals_create_nothing(tmp_path):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "d1" / "photos" / "x.png")
    _png(tmp_path / "d2" / "photos" / "x.png", seed=1)
    os.mkfifo(tmp_path / "fifo")
    one = tmp_path / "in" / "a.png"
    before = _tree(tmp_path)
    cases = [
        (([one], one, None), "overwrite the input"),
        (([one], None, one), "overwrite the input '.*a.png' with the flow map"),
        (([one], tmp_path / "o.png", tmp_path / "o.png"), "the output of .* and the flow map of .* would both be written to"),
        (([tmp_path / "in"], tmp_path / "in", None), "overwrite the input"),
        (([one, one], tmp_path / "out", None), "would both be written to"),
        (([tmp_path / "d1/photos/x.png", tmp_path / "d2/photos/x.png"], tmp_path / "out", None), "out/x.png"),
        (([tmp_path / "d1/photos", tmp_path / "d2/photos"], tmp_path / "out", None), "out/photos/x.png"),
        (([tmp_path / "fifo"], tmp_path / "out", None), "input '.*fifo' is a FIFO, not an image file or folder"),
        (([tmp_path / "fifo"], tmp_path / "o.png", None), "is a FIFO"),
        (([one], tmp_path / "fifo", None), "output '.*fifo' is a FIFO, not a regular file"),
        (([one], tmp_path / "d1", None), "output '.*d1' is a folder, not a file"),
        (([one], tmp_path / "in" / "a.png" / "x.png", None), "'.*a.png' is not a folder"),
        (([tmp_path / "nope.png"], None, None), "does not exist"),
    ]
    for (inputs, output, flow), message in cases:
        with pytest.raises(PffError, match=message):
            plan(inputs, output, flow, suffix="-r")
    assert _tree(tmp_path) == before


def test_plan_refuses_existing_outputs_unless_overwrite(tmp_path):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "b.png")
    _png(tmp_path / "out" / "a.png", seed=3)
    _png(tmp_path / "out" / "b.png", seed=3)
    with pytest.raises(PffError, match=r"output '.*a.png' already exists \(and 1 more outputs\); pass --overwrite"):
        plan([tmp_path / "in"], tmp_path / "out", None, suffix="-r")
    assert len(plan([tmp_path / "in"], tmp_path / "out", None, suffix="-r", overwrite=True)) == 2
    with pytest.raises(PffError, match="overwrite the input"):  # --overwrite never covers an input
        plan([tmp_path / "in" / "a.png"], tmp_path / "in" / "b.png", tmp_path / "in" / "a.png", suffix="-r", overwrite=True)


def test_restore_file_keeps_mode_depth_and_icc_and_existing_files(tmp_path):
    from PIL import ImageCms

    from pff.io import read_picture, write_picture

    torch.manual_seed(0)
    model = create("pff-tiny", channels="rgb").eval()
    restorer = Restorer(model, ModelCard(task="jpeg", channels="rgb", model=model.config))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rng = np.random.default_rng(0)
    for name, pixels in (
        ("a.png", rng.integers(0, 65536, (20, 30, 3)).astype(np.uint16)),
        ("b.tif", rng.integers(0, 65536, (20, 30)).astype(np.uint16)),
        ("c.png", rng.integers(0, 256, (20, 30, 2)).astype(np.uint8)),
    ):
        write_picture(tmp_path / name, pixels, icc_profile=icc)
        job = Job(tmp_path / name, tmp_path / f"out-{name}", tmp_path / f"flow-{name}.png")
        restore_file(restorer, job)
        out = read_picture(job.target)
        assert out.pixels.dtype == pixels.dtype and out.pixels.shape == pixels.shape and out.icc_profile == icc
        assert read_picture(job.flow).pixels.shape == (20, 30, 3)
        written = job.target.read_bytes()
        with pytest.raises(PffError, match="already exists"):  # appeared since plan(): still kept
            restore_file(restorer, Job(tmp_path / name, job.target))
        assert job.target.read_bytes() == written
