from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from pff.errors import PffError
from pff.io import Picture, encode_png16, list_images, read_image, read_picture, write_image, write_json_atomic, write_picture


def _rgb(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3)).astype(np.uint8)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- read_image -----------------------------------------------------------------


def test_png_round_trip_is_exact(tmp_path):
    image = _rgb()
    write_image(tmp_path / "a.png", image)
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_gray_reads_as_rgb_with_equal_channels_or_kept(tmp_path):
    gray = _rgb()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)
    np.testing.assert_array_equal(read_picture(tmp_path / "g.png").pixels, gray)


def test_alpha_is_dropped_in_rgb_mode_and_kept_in_keep_mode(tmp_path):
    rgba = np.concatenate([_rgb(), np.full((5, 7, 1), 128, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])
    np.testing.assert_array_equal(read_picture(tmp_path / "a.png").pixels, rgba)


def test_palette_image_reads_as_rgb(tmp_path):
    image = _rgb()
    Image.fromarray(image).quantize(colors=256).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)
    assert read_picture(tmp_path / "p.png").pixels.shape == (5, 7, 3)


def test_16bit_gray_is_scaled_to_8bit_or_kept(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)  # 32896 = 128 * 257
    Image.fromarray(values).save(tmp_path / "d.png")
    np.testing.assert_array_equal(read_image(tmp_path / "d.png")[..., 1], [[0, 1, 255, 128]])
    kept = read_picture(tmp_path / "d.png").pixels
    assert kept.dtype == np.uint16
    np.testing.assert_array_equal(kept, values)


def test_exif_orientation_is_applied(tmp_path):
    image = _rgb(4, 6)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "o.png", exif=exif)
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), np.rot90(image, k=-1))


def _garbage(path):
    path.write_bytes(b"this is not an image at all" * 10)


def _truncated(path):
    Image.fromarray(_rgb(64, 64)).save(path)
    path.write_bytes(path.read_bytes()[:300])


def _empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("make", "problem"),
    [(_garbage, "not an image"), (_truncated, "truncated or corrupt"), (_empty, "empty")],
)
def test_unreadable_files_raise_pff_error_naming_file(tmp_path, make, problem):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(PffError, match=problem) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_missing_file_and_folder_raise_pff_error(tmp_path):
    with pytest.raises(PffError, match="no such file") as err:
        read_image(tmp_path / "nope.png")
    assert "nope.png" in str(err.value)
    with pytest.raises(PffError, match="folder"):
        read_image(tmp_path)


def test_decompression_bomb_raises_pff_error(tmp_path, monkeypatch):
    Image.fromarray(_rgb(40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2 * 100: Pillow refuses
    with pytest.raises(PffError, match="too many pixels") as err:
        read_image(tmp_path / "big.png")
    assert "big.png" in str(err.value)


# --- list_images ----------------------------------------------------------------


def test_list_images_recursive_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "sub/c.bmp", "notes.txt", ".hidden.png", ".git/d.png", "sub/a.tif"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a.JPG", "b.png", "sub/a.tif", "sub/c.bmp"]


def test_list_images_errors(tmp_path):
    with pytest.raises(PffError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(PffError, match="not a folder"):
        list_images(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(PffError, match="no images found"):
        list_images(tmp_path / "empty")


# --- writing --------------------------------------------------------------------


def test_write_image_replaces_and_leaves_no_temp_file(tmp_path):
    write_image(tmp_path / "a.png", _rgb(seed=1))
    write_image(tmp_path / "a.png", _rgb(seed=2))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), _rgb(seed=2))
    assert _leftovers(tmp_path) == []


def test_write_image_gray_and_jpeg(tmp_path):
    gray = _rgb()[..., 0]
    write_image(tmp_path / "g.png", gray[..., None])
    np.testing.assert_array_equal(read_picture(tmp_path / "g.png").pixels, gray)
    flat = np.full((16, 16, 3), 100, np.uint8)
    write_image(tmp_path / "f.jpg", flat, quality=90)
    assert np.abs(read_image(tmp_path / "f.jpg").astype(int) - 100).max() <= 1


def test_failed_write_keeps_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png", _rgb(seed=1))

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(PffError, match="disk full"):
        write_image(tmp_path / "a.png", _rgb(seed=2))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), _rgb(seed=1))
    assert _leftovers(tmp_path) == []


def test_write_image_errors(tmp_path):
    with pytest.raises(PffError, match="unknown image type"):
        write_image(tmp_path / "a.xyz", _rgb())
    with pytest.raises(PffError, match="alpha"):
        write_image(tmp_path / "a.jpg", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 5), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic(tmp_path):
    path = tmp_path / "out" / "r.json"  # parent folders are created
    write_json_atomic(path, {"psnr": 27.5, "images": [{"name": "a"}]})
    text = path.read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"psnr": 27.5, "images": [{"name": "a"}]}
    assert _leftovers(path.parent) == []


def test_write_json_rejects_nan_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "r.json", {"psnr": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_write_json_unwritable_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PffError, match="cannot write"):
        write_json_atomic(tmp_path / "file" / "r.json", {})


# --- read_picture / write_picture: every mode and bit depth ------------------------


_LAYOUTS = {
    "L": (),
    "LA": (2,),
    "RGB": (3,),
    "RGBA": (4,),
}


def _pixels(shape, dtype, seed=0):
    top = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, top + 1, size=shape).astype(dtype)


def _holds(suffix, layout, dtype):
    """Whether a format stores this layout and depth losslessly (BMP: 8-bit L/RGB; WebP: 8-bit RGB(A);
    16-bit gray + alpha goes to PNG only)."""
    if suffix == ".bmp":
        return layout in ("L", "RGB") and dtype == np.uint8
    if suffix == ".webp":
        return layout in ("RGB", "RGBA") and dtype == np.uint8
    return not (suffix == ".tif" and layout == "LA" and dtype == np.uint16)


_ROUND_TRIPS = [
    (layout, dtype, suffix)
    for suffix in (".png", ".tif", ".bmp", ".webp")
    for dtype in (np.uint8, np.uint16)
    for layout in sorted(_LAYOUTS)
    if _holds(suffix, layout, dtype)
]


@pytest.mark.parametrize(("layout", "dtype", "suffix"), _ROUND_TRIPS)
def test_lossless_round_trip_every_mode_and_depth(tmp_path, layout, dtype, suffix):
    pixels = _pixels((5, 7, *_LAYOUTS[layout]), dtype)
    path = tmp_path / f"a{suffix}"
    options = {"quality": 100} if suffix == ".webp" else {}
    write_picture(path, pixels, **options)  # WebP at quality 100 is lossless
    picture = read_picture(path)
    assert picture.pixels.dtype == dtype
    np.testing.assert_array_equal(picture.pixels, pixels)
    assert _leftovers(tmp_path) == []


def test_jpeg_round_trip_keeps_layout(tmp_path):
    for layout in ("L", "RGB"):
        pixels = np.full((16, 16, *_LAYOUTS[layout]), 90, np.uint8)
        write_picture(tmp_path / "a.jpg", pixels, quality=95)
        out = read_picture(tmp_path / "a.jpg")
        assert out.pixels.shape == pixels.shape and out.format == "JPEG"
        assert np.abs(out.pixels.astype(int) - 90).max() <= 1


def test_palette_and_one_bit_expand(tmp_path):
    image = _rgb(6, 8)
    Image.fromarray(image).quantize(colors=16).save(tmp_path / "p.png")
    picture = read_picture(tmp_path / "p.png")
    assert picture.mode == "P" and picture.pixels.shape == (6, 8, 3)
    np.testing.assert_array_equal(picture.pixels, np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))
    transparent = Image.fromarray(image).quantize(colors=16)
    transparent.info["transparency"] = 0
    transparent.save(tmp_path / "t.png", transparency=0)
    assert read_picture(tmp_path / "t.png").pixels.shape == (6, 8, 4)
    Image.fromarray(image[..., 0] > 128).save(tmp_path / "b.png")
    bits = read_picture(tmp_path / "b.png").pixels
    assert bits.dtype == np.uint8 and bits.shape == (6, 8) and set(np.unique(bits)) <= {0, 255}


def _paeth_png16(pixels):
    """A 16-bit PNG whose rows use all five filter types (as libpng's adaptive filtering does)."""
    import struct
    import zlib

    h, w, c = pixels.shape
    b = pixels.astype(">u2").view(np.uint8).reshape(h, w * c * 2).astype(np.int32)
    bpp = 2 * c
    left = np.zeros_like(b)
    left[:, bpp:] = b[:, :-bpp]
    up = np.zeros_like(b)
    up[1:] = b[:-1]
    up_left = np.zeros_like(b)
    up_left[1:, bpp:] = b[:-1, :-bpp]
    p = left + up - up_left
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    predictions = [np.zeros_like(b), left, up, (left + up) // 2, paeth]
    rows = []
    for y in range(h):
        kind = y % 5
        rows.append(bytes([kind]) + ((b[y] - predictions[kind][y]) % 256).astype(np.uint8).tobytes())

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    colour_type = {2: 4, 3: 2, 4: 6}[c]
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_with_every_filter_type_reads_exactly(tmp_path, channels):
    pixels = _pixels((11, 9, channels), np.uint16, seed=channels)
    (tmp_path / "a.png").write_bytes(_paeth_png16(pixels))
    picture = read_picture(tmp_path / "a.png")
    assert picture.mode == {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[channels]
    np.testing.assert_array_equal(picture.pixels, pixels)


def test_16bit_rgb_tiff_written_by_tifffile_reads_exactly(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    pixels = _pixels((6, 10, 3), np.uint16)
    for compression in (None, "zlib"):
        tifffile.imwrite(tmp_path / "a.tif", pixels, photometric="rgb", compression=compression)
        np.testing.assert_array_equal(read_picture(tmp_path / "a.tif").pixels, pixels)
        written = tmp_path / "b.tif"
        write_picture(written, pixels)
        np.testing.assert_array_equal(tifffile.imread(written), pixels)


def test_16bit_to_8bit_only_formats_rounds(tmp_path):
    pixels = np.array([[[0, 257, 65535]]], np.uint16)
    write_picture(tmp_path / "a.bmp", pixels)
    np.testing.assert_array_equal(read_picture(tmp_path / "a.bmp").pixels, [[[0, 1, 255]]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, orientation):
    from PIL import ImageOps

    image = _rgb(4, 6)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(tmp_path / "o.jpg", exif=exif, quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg")))
    picture = read_picture(tmp_path / "o.jpg")
    np.testing.assert_array_equal(picture.pixels, expected)
    if orientation != 1:
        assert Image.Exif().__class__ and picture.exif is not None
        reread = Image.Exif()
        reread.load(picture.exif)
        assert reread.get(0x0112) == 1


def test_16bit_png_orientation_applies_to_wide_pixels(tmp_path):
    pixels = _pixels((4, 6, 3), np.uint16)
    data = bytearray(encode_png16(pixels))
    exif = Image.Exif()
    exif[0x0112] = 6
    import struct
    import zlib

    block = exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif\0\0") else exif.tobytes()
    chunk = struct.pack(">I", len(block)) + b"eXIf" + block + struct.pack(">I", zlib.crc32(b"eXIf" + block) & 0xFFFFFFFF)
    data = bytes(data[:-12]) + chunk + bytes(data[-12:])  # before IEND
    (tmp_path / "o.png").write_bytes(data)
    np.testing.assert_array_equal(read_picture(tmp_path / "o.png").pixels, np.rot90(pixels, -1))


def test_icc_profile_is_carried(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for suffix, dtype in ((".png", np.uint8), (".jpg", np.uint8), (".tif", np.uint8), (".png", np.uint16), (".tif", np.uint16)):
        pixels = _pixels((4, 5, 3), dtype)
        write_picture(tmp_path / f"a{suffix}", pixels, icc_profile=icc)
        assert read_picture(tmp_path / f"a{suffix}").icc_profile == icc, (suffix, dtype)


@pytest.mark.parametrize(
    ("make", "problem"),
    [(_garbage, "not an image"), (_truncated, "truncated or corrupt"), (_empty, "empty")],
)
def test_read_picture_errors_name_the_file(tmp_path, make, problem):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(PffError, match=problem) as err:
        read_picture(path)
    assert str(path) in str(err.value)


def test_png_header_claiming_huge_size_is_refused(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    with pytest.raises(PffError, match="too many pixels"):
        read_picture(tmp_path / "huge.png")


def test_write_picture_errors(tmp_path):
    with pytest.raises(PffError, match="alpha"):
        write_picture(tmp_path / "a.jpg", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        write_picture(tmp_path / "a.png", np.zeros((4, 4, 3)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(PffError, match="cannot write"):
        write_picture(tmp_path / "file" / "a.png", np.zeros((4, 4), np.uint8))
    assert Picture.__doc__


# --- what pff refuses to read or overwrite ---------------------------------------


def test_special_files_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f.png")  # opening a FIFO for reading would block until a writer comes
    with pytest.raises(PffError, match="'.*f.png': it is a FIFO, not a regular file"):
        read_picture(tmp_path / "f.png")
    with pytest.raises(PffError, match="it is a character device"):
        read_image("/dev/null")


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_images_are_refused(tmp_path, suffix):
    frames = [Image.fromarray(_rgb(seed=i)) for i in range(3)]
    frames[0].save(tmp_path / f"a{suffix}", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(tmp_path / f"a{suffix}") as im:
        assert im.n_frames == 3
    with pytest.raises(PffError, match=r"it is animated \(3 frames\)") as err:
        read_picture(tmp_path / f"a{suffix}")
    assert f"a{suffix}" in str(err.value)
    frames[0].save(tmp_path / f"still{suffix}", save_all=True)  # one frame: an ordinary image
    assert read_image(tmp_path / f"still{suffix}").shape == (5, 7, 3)


def test_large_images_under_the_bomb_limit_read_without_a_warning(tmp_path, monkeypatch):
    Image.fromarray(_rgb(40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels: Pillow warns, below 2 * 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(tmp_path / "big.png"), _rgb(40, 40))


@pytest.mark.parametrize("hard_links", [True, False])
def test_write_without_overwrite_keeps_the_existing_file(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # file systems without hard links take the check-then-move path
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(PermissionError(1, "Operation not permitted")))
    write_picture(tmp_path / "a.png", _rgb(seed=1))
    before = (tmp_path / "a.png").read_bytes()
    with pytest.raises(PffError, match="'.*a.png': it already exists"):
        write_picture(tmp_path / "a.png", _rgb(seed=2), overwrite=False)
    assert (tmp_path / "a.png").read_bytes() == before
    write_picture(tmp_path / "b.png", _rgb(seed=2), overwrite=False)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), _rgb(seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
