from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pff.errors import PffError
from pff.io import list_images, read_image, write_image, write_json_atomic


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
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", mode="keep"), gray)


def test_alpha_is_dropped_in_rgb_mode_and_kept_in_keep_mode(tmp_path):
    rgba = np.concatenate([_rgb(), np.full((5, 7, 1), 128, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", mode="keep"), rgba)


def test_palette_image_reads_as_rgb(tmp_path):
    image = _rgb()
    Image.fromarray(image).quantize(colors=256).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)
    assert read_image(tmp_path / "p.png", mode="keep").shape == (5, 7, 3)


def test_16bit_gray_is_scaled_to_8bit_or_kept(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)  # 32896 = 128 * 257
    Image.fromarray(values).save(tmp_path / "d.png")
    np.testing.assert_array_equal(read_image(tmp_path / "d.png")[..., 1], [[0, 1, 255, 128]])
    kept = read_image(tmp_path / "d.png", mode="keep")
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


def test_read_image_rejects_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "a.png", mode="bgr")


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
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", mode="keep"), gray)
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
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2), np.uint8))
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
