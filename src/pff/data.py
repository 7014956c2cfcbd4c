"""Training pairs made on the fly from folders of clean images.

A sample is a pure function of ``(seed, index)``: its generator is
``np.random.default_rng([seed, index])``, which picks the image, the crop,
the flips and the degradation's own random choices. So a sample can be
regenerated anywhere, and DataLoader workers (fork or spawn) need no shared
random state.

Crops of ``patch + 2 * margin`` pixels are degraded and then cut to their
centre ``patch`` pixels, so no training pixel sees the degradation's border
(the blur's mirrored edge, the bicubic kernels' reach). Images smaller than
that crop are skipped when the dataset is made (``skipped`` lists them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from pff import io
from pff.color import rgb_to_y
from pff.degrade import Degradation
from pff.errors import PffError

CHANNELS = ("rgb", "y")


def list_images(roots: Sequence[str | Path] | str | Path) -> list[Path]:
    """All image files under ``roots`` (each searched recursively by
    :func:`pff.io.list_images`), sorted.

    Raises PffError if a root does not exist, is not a folder, or holds no images.
    """
    if isinstance(roots, (str, Path)):
        roots = [roots]
    return sorted({path for root in roots for path in io.list_images(root)})


def split_train_val(
    paths: Sequence[str | Path], val_count: int, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Hold out ``val_count`` images for validation, deterministically.

    The paths are sorted, shuffled with ``seed``, and the first ``val_count``
    form the validation set. Both lists come back sorted and are disjoint.
    """
    paths = sorted({Path(p) for p in paths})
    if isinstance(val_count, bool) or not isinstance(val_count, (int, np.integer)):
        raise PffError(f"expected an integer val_count, got {val_count!r}")
    if not 0 <= val_count < len(paths):
        raise PffError(f"expected 0 <= val_count < {len(paths)} (the number of images), got {val_count}")
    order = np.random.default_rng(seed).permutation(len(paths))
    val = sorted(paths[i] for i in order[:val_count])
    train = sorted(paths[i] for i in order[val_count:])
    return train, val


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as exc:
        raise PffError(f"cannot read image '{path}': {exc}") from None
    return height, width


class PairDataset(torch.utils.data.Dataset):
    """Random (degraded, clean) training patches from clean images.

    Args:
        paths: clean image files (see :func:`list_images`).
        degradation: a :class:`pff.degrade.Degradation`, e.g.
            ``pff.degrade.for_task("deblur")``.
        patch: side of the returned patches.
        channels: ``"rgb"``, or ``"y"`` for MATLAB luma (uint8, rounded) taken
            from the clean RGB crop before degrading (the JPEG benchmark's setting).
        augment: random rot90 and horizontal flip of the clean crop (before
            degrading; all three degradations commute with them in law).
        seed: with the index, fixes every random choice.
        length: the number of samples an epoch has.
        gray: the share of "rgb" crops made gray (R = G = B = their MATLAB
            luma, uint8) before degrading, so that a colour model also learns
            gray images (the luma benchmark's input is such an image).

    ``dataset[i]`` is ``(degraded, clean)``, two float32 tensors (C, patch,
    patch) in [0, 1], C = 3 for "rgb" and 1 for "y"; the degraded one holds
    8-bit values (k / 255) and is ``patch / shrink`` pixels square when the
    degradation returns a ``shrink`` times smaller image (SR in low
    resolution). The image is chosen uniformly among the usable ones.

    Decoded images are cached lazily (decoded on first use) in a plain dict:
    forked DataLoader workers inherit what the parent already decoded and fill
    their own copies from then on; the cache is not pickled for spawn.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        degradation: Degradation,
        *,
        patch: int = 64,
        channels: str = "rgb",
        augment: bool = True,
        seed: int = 0,
        length: int = 100_000,
        gray: float = 0.0,
    ) -> None:
        if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
            raise PffError(f"expected a positive integer patch size, got {patch!r}")
        if channels not in CHANNELS:
            raise PffError(f"expected channels in {CHANNELS}, got {channels!r}")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise PffError(f"expected a positive dataset length, got {length!r}")
        if isinstance(gray, bool) or not isinstance(gray, (int, float)) or not 0.0 <= gray <= 1.0:
            raise PffError(f"expected a gray share in [0, 1], got {gray!r}")
        if gray and channels != "rgb":
            raise PffError(f"a gray share needs channels='rgb', got {channels!r}")
        need = 1 if channels == "y" else 3
        if degradation.channels not in (None, need):
            raise PffError(
                f"{type(degradation).__name__} works on {degradation.channels}-channel images,"
                f" but channels={channels!r} gives {need}"
            )
        paths = [Path(p) for p in paths]
        if not paths:
            raise PffError("expected at least one training image, got none")
        self.degradation = degradation
        # A degradation may return a smaller image (SR without upsampling): patch and margin
        # are then multiples of that factor, so the degraded patch is exactly the clean one's footprint.
        self.shrink = int(getattr(degradation, "shrink", 1))
        if patch % self.shrink or degradation.margin % self.shrink:
            raise PffError(f"patch ({patch}) and margin ({degradation.margin}) must be multiples of {self.shrink}")
        self.patch = int(patch)
        self.crop = self.patch + 2 * int(degradation.margin)
        self.channels = channels
        self.gray = float(gray)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.length = int(length)
        sizes = [_image_size(p) for p in paths]
        self.paths = [p for p, (h, w) in zip(paths, sizes) if min(h, w) >= self.crop]
        self.skipped = [p for p, (h, w) in zip(paths, sizes) if min(h, w) < self.crop]
        if not self.paths:
            raise PffError(f"no image is at least {self.crop}x{self.crop} pixels (patch plus margins)")
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self._rng(index)
        return self._sample(int(rng.integers(len(self.paths))), rng)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}  # workers started with spawn decode their own images
        return state

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return np.random.default_rng([self.seed, int(index)])

    def _image(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = io.read_image(self.paths[i])
        return self._cache[i]

    def _sample(self, i: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image = self._image(i)
        h, w = image.shape[:2]
        top = int(rng.integers(h - self.crop + 1))
        left = int(rng.integers(w - self.crop + 1))
        clean = image[top : top + self.crop, left : left + self.crop]  # (crop, crop, 3)
        if self.augment:
            clean = np.rot90(clean, k=int(rng.integers(4)))
            if rng.integers(2):
                clean = clean[:, ::-1]
        if self.channels == "y":
            clean = rgb_to_y(clean)[:, :, None]  # (crop, crop, 1) uint8
        elif self.gray and rng.random() < self.gray:
            clean = np.repeat(rgb_to_y(clean)[:, :, None], 3, axis=2)  # (crop, crop, 3) uint8, R = G = B
        clean = np.ascontiguousarray(clean)
        degraded = self.degradation(clean, rng)
        f = self.shrink
        expected = (-(-self.crop // f), -(-self.crop // f), clean.shape[2])
        if degraded.shape != expected:
            raise PffError(f"{type(self.degradation).__name__} returned shape {degraded.shape}, expected {expected}")
        m, p = (self.crop - self.patch) // 2, self.patch
        low = degraded[m // f : (m + p) // f, m // f : (m + p) // f]  # the clean patch's footprint
        return _to_tensor(low), _to_tensor(clean[m : m + p, m : m + p])


class ValidationSet(PairDataset):
    """A fixed list of crops of held-out images, so validation scores are comparable across steps.

    Sample ``index`` is crop ``index % per_image`` of image ``index // per_image``
    (of the usable images, sorted), from ``np.random.default_rng([seed, index])``;
    no augmentation. Same output as :class:`PairDataset`.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        degradation: Degradation,
        *,
        patch: int = 128,
        per_image: int = 4,
        channels: str = "rgb",
        seed: int = 0,
        gray: float = 0.0,
    ) -> None:
        if isinstance(per_image, bool) or not isinstance(per_image, (int, np.integer)) or per_image < 1:
            raise PffError(f"expected a positive per_image, got {per_image!r}")
        super().__init__(paths, degradation, patch=patch, channels=channels, augment=False, seed=seed, gray=gray)
        self.per_image = int(per_image)
        self.length = len(self.paths) * self.per_image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self._rng(index)
        return self._sample(int(index) // self.per_image, rng)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) in [0, 255] -> (C, H, W) float32 tensor in [0, 1]."""
    array = np.ascontiguousarray(np.transpose(image, (2, 0, 1)), dtype=np.float32) / 255.0
    return torch.from_numpy(array)
