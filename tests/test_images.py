import numpy as np
import pytest
import torch
from PIL import Image

from gaacnn.images import ImageError, read_image, to_uint8


def test_rgb(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    x, notes = read_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 5, 7) and notes == []
    assert np.array_equal(to_uint8(x), arr)


def test_grayscale_rgba_16bit(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    x, notes = read_image(tmp_path / "g.png")
    assert "grayscale replicated to RGB" in notes
    assert torch.equal(x[0, 0], x[0, 2]) and np.array_equal(to_uint8(x)[..., 1], gray)

    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x, notes = read_image(tmp_path / "a.png")
    assert "alpha channel dropped" in notes and to_uint8(x)[0, 0, 0] == 200

    g16 = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    x, notes = read_image(tmp_path / "g16.png")
    assert "16-bit samples rounded to 8 bits" in notes
    assert np.array_equal(to_uint8(x)[..., 0], np.rint(g16 / 257).astype(np.uint8))

    import imagecodecs

    rgb16 = np.random.default_rng(1).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    (tmp_path / "c16.png").write_bytes(imagecodecs.png_encode(rgb16))
    x, notes = read_image(tmp_path / "c16.png")
    assert "16-bit samples rounded to 8 bits" in notes
    assert np.array_equal(to_uint8(x), np.rint(rgb16 / 257).astype(np.uint8))


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"hello, not an image", "not a recognised image"),
                                            (b"\x89PNG\r\n\x1a\n\x00\x00", "not a recognised|cannot decode")])
def test_unreadable(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=match):
        read_image(p)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        read_image(tmp_path)
