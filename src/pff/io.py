"""Reading and writing images and JSON files.

Every problem with a user's file (missing, not an image, truncated, empty,
too large) is raised as :class:`~pff.errors.PffError` naming the file and the
problem. Writes are atomic: the data goes to a temporary file in the target
folder, which then replaces the target, so a reader never sees a partial file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from pff.errors import PffError

# Suffixes (lower case) that list_images() treats as images.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".gif",
)  # fmt: skip

_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# Formats whose extra frames are an animation, refused rather than cut to the first frame.
# (Other multi-frame files keep their main image first: MPO camera JPEGs, TIFF thumbnails.)
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return text if text else type(err).__name__


def _from_16bit(im: Image.Image, path: Path) -> np.ndarray:
    """16-bit gray -> (H, W) uint16; 'I' (32-bit) only when its values fit 16 bits."""
    array = np.asarray(im)
    if array.min() < 0 or array.max() > 65535:
        raise PffError(f"cannot read image '{path}': 32-bit integer images are not supported")
    return array.astype(np.uint16)


def _rgb_8bit(im: Image.Image, path: Path) -> np.ndarray:
    """A decoded image in another colour space (CMYK, YCbCr, LAB, HSV) -> (H, W, 3) uint8 RGB."""
    if im.mode == "F":
        raise PffError(f"cannot read image '{path}': floating-point images are not supported")
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


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB in [0, 255], upright (EXIF orientation applied).

    :func:`read_picture` with the pixels made 8-bit RGB: gray becomes
    R = G = B, alpha is dropped, 16 bits are rounded to 8. Raises PffError as
    :func:`read_picture` does.
    """
    pixels = read_picture(path).pixels
    if pixels.dtype == np.uint16:
        pixels = _to_8bit(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]  # (H, W, 1)
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)  # (H, W, 3)
    return np.ascontiguousarray(colour)


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


def write_atomic(path: Path, write: Callable[[IO[bytes]], None], *, overwrite: bool = True) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync, then move it onto ``path``.

    The target is never left half-written: on any failure the temporary file
    is removed. With ``overwrite=False`` an existing ``path`` is left alone
    and FileExistsError is raised, also when it appeared while writing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "xb" honours the umask, unlike mkstemp's 0600.
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_new(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _move_new(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # fails if the name is taken, atomically
    except FileExistsError:
        raise
    except OSError:
        # File systems without hard links: check, then move (open to a race).
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
    else:
        tmp.unlink()


def _write_error(path: Path, err: OSError) -> PffError:
    if isinstance(err, FileExistsError) and str(path) in (err.filename, err.filename2):
        return PffError(f"cannot write '{path}': it already exists")
    return PffError(f"cannot write '{path}': {err.strerror or _describe(err)}")


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, quality: int = 95) -> None:
    """Write a uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image in [0, 255] atomically.

    :func:`write_picture` for 8-bit pixels; the format follows the suffix.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image expects a uint8 array, got {image.dtype}")
    write_picture(path, image, quality=quality)


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


# --- every mode and bit depth, with metadata ----------------------------------------

# Pillow decodes 16-bit RGB(A) into 8-bit modes by keeping each sample's high
# byte. Decoding the same file a second time with the opposite byte order
# keeps the low bytes instead (the decoders' unfiltering works on bytes and
# is the same for both orders), which recovers the 16-bit values exactly.
_SWAP_ORDER = {"L": "B", "B": "L", "N": "B" if sys.byteorder == "little" else "L"}
_WIDE_RAWMODES = ("RGB;16", "RGBA;16")
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Picture:
    """A decoded image file: upright pixels and what must survive a round trip.

    pixels: (H, W) gray, (H, W, 2) gray + alpha, (H, W, 3) RGB or (H, W, 4)
    RGBA, uint8 or uint16 (16-bit gray, and 16-bit RGB(A) PNG and TIFF);
    palette images are expanded to RGB(A), 1-bit to gray, CMYK and YCbCr to RGB.
    mode: Pillow's mode of the file ("P", "I;16", "RGB", ...; "RGB;16" and
    "RGBA;16" for 16-bit colour). format: Pillow's format name ("PNG", ...).
    icc_profile: the embedded ICC profile, if any. exif: the EXIF block with
    its orientation reset to 1 (the pixels are already rotated), if any.
    """

    pixels: np.ndarray
    mode: str
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None


def _rawmode(im: Image.Image) -> str | None:
    if len(im.tile) != 1:
        return None
    args = im.tile[0].args
    raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else None)
    return raw if isinstance(raw, str) else None


def _decode_with_rawmode(path: Path, rawmode: str) -> np.ndarray:
    """Decode ``path`` with Pillow, its decoder told to unpack with ``rawmode``."""
    with Image.open(path) as im:
        tile = im.tile[0]
        args = rawmode if isinstance(tile.args, str) else (rawmode, *tile.args[1:])
        im.tile = [tile._replace(args=args)]
        im.load()
        return np.asarray(im)


def _decode_16bit_colour(path: Path, im: Image.Image) -> tuple[np.ndarray, str] | None:
    """(H, W, 2|3|4) uint16 and its mode for 16-bit LA/RGB/RGBA files Pillow would truncate; else None."""
    raw = _rawmode(im)
    if raw is None:
        return None
    if im.format == "PNG" and raw == "LA;16B":
        # 4 bytes per pixel, as 8-bit RGBA: the unfiltering sees the same bytes.
        quad = _decode_with_rawmode(path, "RGBA").astype(np.uint16)  # (H, W, 4): Y hi, Y lo, A hi, A lo
        return quad[..., 0::2] * 256 + quad[..., 1::2], "LA;16"
    if raw[:-1] in _WIDE_RAWMODES and raw[-1] in _SWAP_ORDER:
        high = _decode_with_rawmode(path, raw).astype(np.uint16)
        low = _decode_with_rawmode(path, raw[:-1] + _SWAP_ORDER[raw[-1]])
        return high * 256 + low, raw[:-1]
    return None


def _metadata(im: Image.Image) -> tuple[int, bytes | None, bytes | None]:
    """(EXIF orientation, ICC profile, EXIF bytes with the orientation reset)."""
    icc = im.info.get("icc_profile") or None
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block is dropped, not fatal
        return 1, icc, None
    orientation = exif.get(_EXIF_ORIENTATION, 1)
    if not exif:
        return 1, icc, None
    if _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = 1
    return orientation if orientation in _ORIENT else 1, icc, exif.tobytes()


def read_picture(path: str | os.PathLike[str]) -> Picture:
    """Read an image file in its own mode and bit depth, upright, with its ICC profile and EXIF.

    The one image reader of pff (:func:`read_image` is an 8-bit RGB view of
    it). See :class:`Picture`. Raises PffError naming the file when it is
    missing, not a regular file, empty, not an image, truncated or corrupt,
    animated, more than Pillow's decompression-bomb limit of pixels (2 x
    ``PIL.Image.MAX_IMAGE_PIXELS``, 179 MP by default; larger images up to it
    are read without Pillow's warning), 32-bit integer or floating point.
    """
    path = Path(path)
    _check_file(path)
    with _decoding(path):
        with Image.open(path) as im:
            image_format, mode = im.format, im.mode
            frames = getattr(im, "n_frames", 1)
            if frames > 1 and image_format in _ANIMATED_FORMATS:
                raise PffError(f"cannot read image '{path}': it is animated ({frames} frames); pff reads still images only")
            wide = _decode_16bit_colour(path, im)  # before anything loads the image
            if wide is None:
                im.load()
                pixels = _as_decoded(im, path)
            else:
                pixels, mode = wide
            orientation, icc, exif = _metadata(im)
    if orientation in _ORIENT:
        pixels = np.ascontiguousarray(_ORIENT[orientation](pixels))
    return Picture(pixels, mode, image_format, icc, exif)


def file_kind(path: Path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder ("a FIFO", ...); None otherwise.

    Follows symbolic links; None also for a path that does not exist.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise PffError(f"cannot read image '{path}': no such file")
    if path.is_dir():
        raise PffError(f"cannot read image '{path}': it is a folder, not a file")
    kind = file_kind(path)
    if kind is not None:
        raise PffError(f"cannot read image '{path}': it is {kind}, not a regular file")
    if path.stat().st_size == 0:
        raise PffError(f"cannot read image '{path}': the file is empty")


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn every failure while decoding ``path`` into a PffError naming the file.

    Pillow's DecompressionBombWarning (images between its limit and twice it)
    is silenced: large photos are legitimate input; twice the limit is an error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except PffError:
        raise
    except Image.DecompressionBombError as err:
        raise PffError(f"cannot read image '{path}': too many pixels ({_describe(err)})") from err
    except Image.UnidentifiedImageError as err:
        raise PffError(f"cannot read image '{path}': not an image file Pillow can decode") from err
    except PermissionError as err:
        raise PffError(f"cannot read image '{path}': permission denied") from err
    except MemoryError as err:
        raise PffError(f"cannot read image '{path}': not enough memory to decode it") from err
    # Decoders signal a truncated or corrupt file with many exception types.
    except Exception as err:  # noqa: BLE001
        raise PffError(f"cannot read image '{path}': truncated or corrupt ({_describe(err)})") from err


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png16(pixels: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
    """A 16-bit PNG of (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) uint16 (rows filtered with 'Up')."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(h, w * channels * 2)
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up: each byte minus the byte above, modulo 256
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def encode_tiff16(pixels: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
    """A little-endian, Deflate-compressed, single-strip 16-bit RGB or RGBA TIFF of (H, W, 3|4) uint16."""
    h, w, channels = pixels.shape
    strip = zlib.compress(np.ascontiguousarray(pixels, dtype="<u2").tobytes(), 6)
    short, long_, undefined = 3, 4, 7
    # (tag, type, count, value or bytes stored after the directory)
    entries: list[tuple[int, int, int, int | bytes]] = [
        (256, long_, 1, w),
        (257, long_, 1, h),
        (258, short, channels, struct.pack(f"<{channels}H", *([16] * channels))),
        (259, short, 1, 8),  # Deflate
        (262, short, 1, 2),  # RGB
        (273, long_, 1, 0),  # strip offset, filled in below
        (277, short, 1, channels),
        (278, long_, 1, h),
        (279, long_, 1, len(strip)),
        (284, short, 1, 1),  # interleaved samples
    ]
    if channels == 4:
        entries.append((338, short, 1, 2))  # unassociated alpha
    if icc_profile:
        entries.append((34675, undefined, len(icc_profile), icc_profile))
    directory_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + directory_size
    extra = b""
    packed = []
    for tag, kind, count, value in entries:
        if isinstance(value, bytes):
            if len(value) <= 4:
                packed.append(struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0"))
                continue
            packed.append(struct.pack("<HHII", tag, kind, count, extra_at + len(extra)))
            extra += value + (b"\0" if len(value) % 2 else b"")
        else:
            packed.append(struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == short else struct.pack("<I", value)))
    strip_at = extra_at + len(extra)
    packed = [p if p[:2] != struct.pack("<H", 273) else p[:8] + struct.pack("<I", strip_at) for p in packed]
    directory = struct.pack("<H", len(entries)) + b"".join(packed) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + directory + extra + strip


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    return np.floor(pixels.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def write_picture(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
    overwrite: bool = True,
) -> None:
    """Write (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) uint8 or uint16 atomically; format from the suffix.

    16 bits are kept by PNG (any layout) and TIFF (gray, RGB, RGBA); other
    formats get the values rounded to 8 bits. ``quality`` applies to JPEG and
    WebP (WebP at 100 is lossless). The ICC profile (and EXIF, where
    the format has it) is embedded. Raises PffError for an unknown suffix, a
    layout the format cannot hold (alpha in JPEG), an existing ``path`` when
    ``overwrite`` is False, or a failed write; never leaves a partial file at
    ``path``.
    """
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_picture expects a uint8 or uint16 array, got {pixels.dtype}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and 1 <= pixels.shape[2] <= 4)):
        raise ValueError(f"expected an (H, W) or (H, W, 1-4) image, got shape {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise PffError(f"cannot write '{path}': unknown image type '{path.suffix}' (use e.g. .png)")
    has_alpha = pixels.ndim == 3 and pixels.shape[2] in (2, 4)
    if image_format == "JPEG" and has_alpha:
        raise PffError(f"cannot write '{path}': JPEG has no alpha channel (use .png)")
    encode: Callable[[IO[bytes]], Any]
    if pixels.dtype == np.uint16 and pixels.ndim == 3 and image_format == "PNG":
        data = encode_png16(pixels, icc_profile=icc_profile)
        encode = lambda handle: handle.write(data)  # noqa: E731
    elif pixels.dtype == np.uint16 and pixels.ndim == 3 and image_format == "TIFF" and pixels.shape[2] != 2:
        data = encode_tiff16(pixels, icc_profile=icc_profile)
        encode = lambda handle: handle.write(data)  # noqa: E731
    else:
        if pixels.dtype == np.uint16 and (pixels.ndim == 3 or image_format not in ("PNG", "TIFF")):
            pixels = _to_8bit(pixels)
        pil = Image.fromarray(pixels)
        options: dict[str, Any] = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
        if image_format == "WEBP" and quality >= 100:
            options.update(lossless=True, exact=True)  # exact: keep the colour under transparent pixels
        if icc_profile and image_format in ("PNG", "JPEG", "WEBP", "TIFF"):
            options["icc_profile"] = icc_profile
        if exif and image_format in ("PNG", "JPEG", "WEBP", "TIFF"):
            options["exif"] = exif
        encode = lambda handle: pil.save(handle, format=image_format, **options)  # noqa: E731
    try:
        write_atomic(path, encode, overwrite=overwrite)
    except OSError as err:
        raise _write_error(path, err) from err
    except (ValueError, KeyError) as err:
        raise PffError(f"cannot write '{path}': {image_format} cannot hold this image ({_describe(err)})") from err
