"""Image folders, the train/validation split and the on-the-fly pair datasets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pff.color import rgb_to_y
from pff.data import PairDataset, ValidationSet, list_images, split_train_val
from pff.degrade import Bicubic, Jpeg, MotionBlur, jpeg_roundtrip
from pff.errors import PffError


def _coordinate_image(h: int, w: int, offset: int = 0) -> np.ndarray:
    """R = row, G = column, B = offset: every crop tells where it came from."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows, cols, np.full_like(rows, offset)], axis=2).astype(np.uint8)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(_coordinate_image(100, 120, 10)).save(root / "a.png")
    Image.fromarray(_coordinate_image(90, 90, 20)).save(root / "sub" / "b.png")
    Image.fromarray(_coordinate_image(110, 95, 30)).save(root / "sub" / "c.bmp")
    Image.fromarray(_coordinate_image(20, 20, 40)).save(root / "tiny.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_list_images_recursive_sorted(folder: Path):
    paths = list_images([folder])
    assert [p.relative_to(folder).as_posix() for p in paths] == ["a.png", "sub/b.png", "sub/c.bmp", "tiny.png"]
    assert list_images(str(folder)) == paths  # a single root is fine too


def test_list_images_errors(tmp_path: Path):
    with pytest.raises(PffError, match="does not exist"):
        list_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PffError, match="no images found"):
        list_images([tmp_path / "empty"])


def test_split_train_val_is_disjoint_and_deterministic():
    paths = [Path(f"img{i:03d}.png") for i in range(50)]
    train, val = split_train_val(paths, 7, seed=3)
    assert len(val) == 7 and len(train) == 43
    assert not set(train) & set(val) and set(train) | set(val) == set(paths)
    assert split_train_val(list(reversed(paths)), 7, seed=3) == (train, val)
    assert split_train_val(paths, 7, seed=4)[1] != val
    with pytest.raises(PffError, match="val_count"):
        split_train_val(paths, 50)


def _assert_is_a_patch(clean: torch.Tensor, margin: int, height: int, width: int):
    """The clean patch is a (possibly rotated/flipped) square of a coordinate image, margin inside."""
    rows = torch.round(clean[0] * 255).numpy()
    cols = torch.round(clean[1] * 255).numpy()
    assert rows.min() >= margin and rows.max() <= height - 1 - margin
    assert cols.min() >= margin and cols.max() <= width - 1 - margin
    assert rows.max() - rows.min() == cols.max() - cols.min() == clean.shape[1] - 1


def test_pair_dataset_samples(folder: Path):
    dataset = PairDataset(list_images([folder]), MotionBlur(), patch=32, seed=1, length=50)
    assert len(dataset) == 50
    assert [p.name for p in dataset.skipped] == ["tiny.png"]  # smaller than 32 + 2 * 12
    sizes = {10: (100, 120), 20: (90, 90), 30: (110, 95)}
    seen = set()
    for i in range(20):
        degraded, clean = dataset[i]
        assert degraded.shape == clean.shape == (3, 32, 32)
        assert degraded.dtype == clean.dtype == torch.float32
        assert 0 <= degraded.min() and degraded.max() <= 1
        offset = int(round(float(clean[2, 0, 0]) * 255))
        seen.add(offset)
        _assert_is_a_patch(clean, dataset.degradation.margin, *sizes[offset])
    assert seen == {10, 20, 30}


def test_pair_dataset_is_a_function_of_seed_and_index(folder: Path):
    paths = list_images([folder])
    first = PairDataset(paths, MotionBlur(), patch=24, seed=5)
    second = PairDataset(paths, MotionBlur(), patch=24, seed=5)
    for index in (0, 7, 99_999):
        a, b = first[index], second[index]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(first[1][1], first[2][1])
    other = PairDataset(paths, MotionBlur(), patch=24, seed=6)
    assert not torch.equal(other[0][1], first[0][1])
    with pytest.raises(IndexError):
        first[len(first)]


def test_pair_dataset_y_channel_and_degradation(folder: Path):
    paths = list_images([folder])
    dataset = PairDataset(paths, Jpeg(quality=20), patch=16, channels="y", augment=False, seed=2)
    degraded, clean = dataset[3]
    assert degraded.shape == clean.shape == (1, 16, 16)
    clean_y = np.round(clean[0].numpy() * 255).astype(np.uint8)
    # JPEG has no margin: the degraded patch is the JPEG of the clean luma patch.
    expected = jpeg_roundtrip(clean_y, 20)
    np.testing.assert_array_equal(np.round(degraded[0].numpy() * 255), expected)
    # The luma is MATLAB's Y of the RGB crop that the same (seed, index) picks.
    rgb = PairDataset(paths, Bicubic(4), patch=16, channels="rgb", augment=False, seed=2)[3][1]
    luma = PairDataset(paths, Bicubic(4), patch=16, channels="y", augment=False, seed=2)[3][1]
    rgb_uint8 = np.round(rgb.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.round(luma[0].numpy() * 255), rgb_to_y(rgb_uint8))


def test_pair_dataset_under_dataloader_workers(folder: Path):
    dataset = PairDataset(list_images([folder]), Bicubic(4), patch=16, seed=3, length=8)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    degraded = torch.cat([b[0] for b in batches])
    clean = torch.cat([b[1] for b in batches])
    for i in range(8):
        assert torch.equal(degraded[i], dataset[i][0]) and torch.equal(clean[i], dataset[i][1])


def test_pair_dataset_goes_to_spawned_workers_without_its_cache(folder: Path):
    dataset = PairDataset(list_images([folder]), Bicubic(4), patch=16, seed=3, length=8)
    sample = dataset[0]
    assert dataset._cache
    assert dataset.__getstate__()["_cache"] == {}  # what a spawned worker receives
    assert dataset._cache  # the parent keeps its own
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=1, multiprocessing_context="spawn")
    degraded, _ = next(iter(loader))
    assert torch.equal(degraded[0], sample[0])


def test_pair_dataset_errors(folder: Path, tmp_path: Path):
    paths = list_images([folder])
    with pytest.raises(PffError, match="1-channel"):
        PairDataset(paths, Jpeg(), channels="rgb")
    with pytest.raises(PffError, match="channels"):
        PairDataset(paths, MotionBlur(), channels="yuv")
    with pytest.raises(PffError, match="no image is at least 224x224"):
        PairDataset(paths, MotionBlur(), patch=200)
    with pytest.raises(PffError, match="at least one"):
        PairDataset([], MotionBlur())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(PffError, match="cannot read image"):
        PairDataset([broken], MotionBlur())


def test_validation_set_is_fixed(folder: Path):
    paths = list_images([folder])
    val = ValidationSet(paths, Bicubic(4), patch=24, per_image=3, seed=1)
    assert len(val) == 9  # tiny.png is skipped
    again = ValidationSet(paths, Bicubic(4), patch=24, per_image=3, seed=1)
    offsets = []
    for i in range(len(val)):
        a, b = val[i], again[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        offsets.append(int(round(float(a[1][2, 0, 0]) * 255)))
    assert offsets == [10] * 3 + [20] * 3 + [30] * 3  # crop i comes from image i // per_image
    # No augmentation: rows grow downwards, columns to the right.
    clean = val[0][1]
    assert torch.all(clean[0, 1:] > clean[0, :-1]) and torch.all(clean[1, :, 1:] > clean[1, :, :-1])


def test_pair_dataset_gray_share(folder: Path):
    paths = list_images([folder])
    jpeg = Jpeg(quality=20, gray=False)
    colour = PairDataset(paths, jpeg, patch=16, augment=False, seed=4)
    all_gray = PairDataset(paths, jpeg, patch=16, augment=False, seed=4, gray=1.0)
    for i in range(4):
        degraded, clean = all_gray[i]
        assert torch.equal(clean[0], clean[1]) and torch.equal(clean[1], clean[2])
        # The gray crop is the MATLAB luma of the colour crop at the same place, and its JPEG is the
        # grayscale JPEG of that luma (the luma benchmark's input), repeated in R, G and B.
        rgb = np.round(colour[i][1].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        luma = rgb_to_y(rgb)
        np.testing.assert_array_equal(np.round(clean[0].numpy() * 255), luma)
        np.testing.assert_array_equal(np.round(degraded.numpy() * 255), np.stack([jpeg_roundtrip(luma, 20)] * 3))
    half = PairDataset(paths, jpeg, patch=16, augment=False, seed=4, gray=0.5, length=200)
    share = np.mean([torch.equal(half[i][1][0], half[i][1][2]) for i in range(200)])
    assert 0.35 < share < 0.65  # (the coordinate images are never gray themselves: B is constant)
    with pytest.raises(PffError, match="gray share in"):
        PairDataset(paths, jpeg, gray=1.5)
    with pytest.raises(PffError, match="needs channels='rgb'"):
        PairDataset(paths, Jpeg(), channels="y", gray=0.5)
