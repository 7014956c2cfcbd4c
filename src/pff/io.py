"""Reading and writing images and JSON files.

Every problem with a user's file (missing, not an image, truncated, empty,
too large) is raised as :class:`~pff.errors.PffError` naming the file and the
problem. Writes are atomic: the data goes to a temporary file in the target
folder, which then replaces the target, so a reader never sees a partial file.
"""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from PIL import Image, ImageOps

from pff.errors import PffError

# Suffixes (lower case) that list_images() treats as images.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".gif",
)  # fmt: skip

_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return text if text else type(err).__name__


def _open_checked(path: Path) -> Image.Image:
    """Open and fully decode ``path``, turning every failure into a PffError."""
    if not path.exists():
        raise PffError(f"cannot read image '{path}': no such file")
    if path.is_dir():
        raise PffError(f"cannot read image '{path}': it is a folder, not a file")
    try:
        if path.stat().st_size == 0:
            raise PffError(f"cannot read image '{path}': the file is empty")
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except PffError:
        raise
    except Image.DecompressionBombError as err:
        raise PffError(f"cannot read image '{path}': too many pixels ({_describe(err)})") from err
    except Image.UnidentifiedImageError as err:
        raise PffError(f"cannot read image '{path}': not an image file Pillow can decode") from err
    except PermissionError as err:
        raise PffError(f"cannot read image '{path}': permission denied") from err
    # Pillow's decoders signal a truncated or corrupt file with many exception
    # types (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error).
    except Exception as err:  # noqa: BLE001
        raise PffError(f"cannot read image '{path}': truncated or corrupt ({_describe(err)})") from err


def _from_16bit(im: Image.Image, path: Path) -> np.ndarray:
    """16-bit gray -> (H, W) uint16; 'I' (32-bit) only when its values fit 16 bits."""
    array = np.asarray(im)
    if array.min() < 0 or array.max() > 65535:
        raise PffError(f"cannot read image '{path}': 32-bit integer images are not supported")
    return array.astype(np.uint16)


def _rgb_8bit(im: Image.Image, path: Path) -> np.ndarray:
    """Any decoded image -> (H, W, 3) uint8 RGB; gray gets R = G = B, alpha is dropped."""
    if im.mode in _16BIT_MODES or im.mode == "I":
        gray = _from_16bit(im, path).astype(np.float64)
        gray8 = np.floor(gray / 257.0 + 0.5).astype(np.uint8)  # 65535 -> 255
        return np.repeat(gray8[..., None], 3, axis=2)
    if im.mode == "F":
        raise PffError(f"cannot read image '{path}': floating-point images are not supported")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as err:
        raise PffError(f"cannot read image '{path}': cannot convert mode {im.mode} to RGB") from err


def _as_decoded(im: Image.Image, path: Path) -> np.ndarray:
    """The image's own layout: gray (H, W), gray+alpha (H, W, 2), RGB (H, W, 3), RGBA (H, W, 4)."""
    if im.mode in _16BIT_MODES or im.mode == "I":
        return _from_16bit(im, path)
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(im, dtype=np.uint8)
    if im.mode == "1":
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if im.mode in ("P", "PA"):
        has_alpha = im.mode == "PA" or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    return _rgb_8bit(im, path)


def read_image(path: str | os.PathLike[str], *, mode: Literal["rgb", "keep"] = "rgb") -> np.ndarray:
    """Read an image file, applying its EXIF orientation.

    mode="rgb" (default): (H, W, 3) uint8 in [0, 255]; gray becomes R = G = B,
    alpha is dropped, 16-bit gray is scaled to 8 bits.
    mode="keep": the decoded layout, uint8 (H, W), (H, W, 2), (H, W, 3) or
    (H, W, 4), or (H, W) uint16 for 16-bit gray; palette images become RGB(A).

    Raises PffError naming the file when it is missing, empty, not an image,
    truncated or corrupt, or has too many pixels (Pillow's decompression-bomb
    limit).
    """
    if mode not in ("rgb", "keep"):
        raise ValueError(f"mode must be 'rgb' or 'keep', got {mode!r}")
    path = Path(path)
    im = _open_checked(path)
    return _rgb_8bit(im, path) if mode == "rgb" else _as_decoded(im, path)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by relative path.

    Files are recognised by suffix (``IMAGE_SUFFIXES``, any case); hidden files
    and folders (names starting with '.') are skipped. Raises PffError if the
    folder does not exist, is not a folder, or holds no images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise PffError(f"folder '{folder}' does not exist")
    if not folder.is_dir():
        raise PffError(f"'{folder}' is not a folder")
    found = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not _is_hidden(p.relative_to(folder))
    ]
    if not found:
        raise PffError(f"no images found in '{folder}' (looked for {', '.join(IMAGE_SUFFIXES)})")
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync, then move it onto ``path``.

    The target is never left half-written: on any failure the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "xb" honours the umask, unlike mkstemp's 0600.
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_error(path: Path, err: OSError) -> PffError:
    return PffError(f"cannot write '{path}': {err.strerror or _describe(err)}")


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, quality: int = 95) -> None:
    """Write an image atomically; the format follows the file suffix.

    image: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) in [0, 255].
    ``quality`` applies to lossy formats (JPEG, WebP). Raises PffError for an
    unknown suffix or a file that cannot be written; never leaves a partial
    file at ``path``.
    """
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image expects a uint8 array, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise PffError(f"cannot write '{path}': unknown image type '{path.suffix}' (use e.g. .png)")
    pil = Image.fromarray(image)
    if image_format == "JPEG" and pil.mode == "RGBA":
        raise PffError(f"cannot write '{path}': JPEG has no alpha channel (use .png)")
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    try:
        write_atomic(path, lambda handle: pil.save(handle, format=image_format, **options))
    except OSError as err:
        raise _write_error(path, err) from err


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int = 2) -> None:
    """Write ``data`` as JSON (UTF-8, trailing newline) atomically.

    Non-finite floats are rejected (JSON has no NaN or Infinity): convert them
    first. Raises PffError if the file cannot be written.
    """
    path = Path(path)
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    try:
        write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as err:
        raise _write_error(path, err) from err
