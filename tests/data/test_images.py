import numpy as np
import pytest
import torch
from PIL import Image

from harmony.data import read_image, read_mask, write_image
from harmony.data.png import encode_png
from harmony.errors import HarmonyError, HarmonyWarning


def _pixels(height, width, channels, dtype, seed=0):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, info.max, (height, width, channels), endpoint=True).astype(dtype)
    pixels[0, 0], pixels[0, 1] = 0, info.max  # both ends of the range
    return pixels


def _as_tensor(pixels):
    scale = np.iinfo(pixels.dtype).max
    return torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32) / scale)[None]


def _levels(image, bit_depth):
    """[1,C,H,W] in [0,1] -> [H,W,C] integer levels (exact for values read from a file)."""
    return np.rint(image[0].permute(1, 2, 0).numpy().astype(np.float64) * (2**bit_depth - 1))


@pytest.mark.parametrize(("bit_depth", "dtype"), [(8, np.uint8), (16, np.uint16)])
def test_png_round_trip_is_exact(tmp_path, bit_depth, dtype):
    pixels = _pixels(17, 23, 3, dtype)
    path = write_image(tmp_path / "out.png", _as_tensor(pixels), bit_depth=bit_depth)

    image, depth = read_image(path)

    assert depth == bit_depth
    assert image.dtype == torch.float32 and image.shape == (1, 3, 17, 23)
    np.testing.assert_array_equal(_levels(image, bit_depth), pixels)


def test_16bit_rgb_png_keeps_the_low_byte(tmp_path):
    # Pillow reads 16-bit RGB as 8-bit; values that differ only in the low byte must survive.
    pixels = np.full((4, 5, 3), 0x1234, np.uint16)
    pixels[1, 2] = (0x1235, 0x12FF, 0x0001)
    path = tmp_path / "deep.png"
    path.write_bytes(encode_png(pixels))

    image, depth = read_image(path)

    assert depth == 16
    np.testing.assert_array_equal(_levels(image, 16), pixels)


def test_write_rounds_to_nearest_and_clamps(tmp_path):
    values = torch.tensor([10.4, 10.6, 254.7, -3.0, 300.0, 0.0]) / 255
    image = values.view(1, 1, 1, 6).expand(1, 3, 1, 6).contiguous()
    path = write_image(tmp_path / "r.png", image[0])  # [3,H,W] is accepted too

    stored = np.asarray(Image.open(path))

    np.testing.assert_array_equal(stored[0, :, 0], [10, 11, 255, 0, 255, 0])


def test_gray_is_replicated_and_alpha_dropped(tmp_path):
    gray = _pixels(6, 7, 1, np.uint8)[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    gray16 = _pixels(6, 7, 1, np.uint16, seed=1)[..., 0]
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    rgba = _pixels(6, 7, 4, np.uint8, seed=2)
    rgba[..., 3] = 0  # fully transparent: the colour must still come through untouched
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    rgba16 = _pixels(6, 7, 4, np.uint16, seed=3)
    (tmp_path / "rgba16.png").write_bytes(encode_png(rgba16))

    image, depth = read_image(tmp_path / "gray.png")
    assert depth == 8 and image.shape == (1, 3, 6, 7)
    np.testing.assert_array_equal(_levels(image, 8), np.repeat(gray[..., None], 3, axis=2))
    image, depth = read_image(tmp_path / "gray16.png")
    assert depth == 16
    np.testing.assert_array_equal(_levels(image, 16), np.repeat(gray16[..., None], 3, axis=2))
    with pytest.warns(HarmonyWarning, match="alpha channel"):
        image, _ = read_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(_levels(image, 8), rgba[..., :3])
    with pytest.warns(HarmonyWarning, match="alpha channel"):
        image, _ = read_image(tmp_path / "rgba16.png")
    np.testing.assert_array_equal(_levels(image, 16), rgba16[..., :3])


def test_palette_png_and_jpeg_are_read_as_pillow_decodes_them(tmp_path):
    rgb = _pixels(8, 8, 3, np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=90)

    for name in ("palette.png", "photo.jpg"):
        image, depth = read_image(tmp_path / name)
        expected = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        assert depth == 8
        np.testing.assert_array_equal(_levels(image, 8), expected)


def test_jpeg_write_is_8_bit_only(tmp_path):
    image = _as_tensor(_pixels(8, 8, 3, np.uint8))

    path = write_image(tmp_path / "out.jpg", image)
    assert Image.open(path).format == "JPEG"
    assert read_image(path)[0].shape == (1, 3, 8, 8)
    with pytest.raises(HarmonyError, match="JPEG stores 8 bits"):
        write_image(tmp_path / "deep.jpeg", image, bit_depth=16)
    with pytest.raises(HarmonyError, match=r"\.png, \.jpg or \.jpeg"):
        write_image(tmp_path / "out.bmp", image)


def _blob(height=12, width=16):
    """A binary foreground blob [H,W] (bool) and a soft version of it [H,W] uint8 (0..255)."""
    ys, xs = np.mgrid[:height, :width]
    radius = np.hypot((ys - height / 2) / (height / 3), (xs - width / 2) / (width / 3))
    soft = np.clip((1.3 - radius) / 0.6, 0, 1)
    return radius < 1, np.rint(soft * 255).astype(np.uint8)


def _save(path, pixels, mode=None):
    Image.fromarray(pixels, mode).save(path)
    return path


def test_mask_values_are_the_brightest_channel_scaled_by_bit_depth(tmp_path):
    _, soft = _blob()
    gray = _save(tmp_path / "gray.png", soft)
    white = _save(tmp_path / "white.png", np.repeat(soft[..., None], 3, axis=2))
    green = np.zeros((*soft.shape, 3), np.uint8)
    green[..., 1] = soft
    drawn_green = _save(tmp_path / "green.png", green)
    deep = tmp_path / "deep.png"
    deep.write_bytes(encode_png((soft.astype(np.uint16) * 257)[..., None]))

    expected = torch.from_numpy(soft.astype(np.float32) / 255)[None, None]
    for path in (gray, white, drawn_green, deep):
        mask = read_mask(path, size=soft.shape)
        assert mask.shape == (1, 1, *soft.shape) and mask.dtype == torch.float32
        torch.testing.assert_close(mask, expected, atol=0, rtol=0, msg=path.name)


def test_zero_one_label_map_reads_one_as_foreground(tmp_path):
    inside, _ = _blob()
    path = _save(tmp_path / "labels.png", inside.astype(np.uint8))  # values 0 and 1

    mask = read_mask(path)

    assert torch.equal(mask[0, 0], torch.from_numpy(inside.astype(np.float32)))


def test_alpha_carries_the_mask_unless_it_is_uniformly_opaque(tmp_path):
    inside, soft = _blob()
    rgba = np.zeros((*soft.shape, 4), np.uint8)  # black colour, mask in the alpha
    rgba[..., 3] = soft
    gray_alpha = np.stack([np.full_like(soft, 255), soft], axis=2)  # white L, mask in the alpha
    opaque = np.concatenate(  # an editor's RGBA export: mask in the colour, alpha all 255
        [
            np.repeat(inside[..., None].astype(np.uint8) * 255, 3, axis=2),
            np.full_like(rgba[..., :1], 255),
        ],
        axis=2,
    )

    expected = torch.from_numpy(soft.astype(np.float32) / 255)
    assert torch.equal(read_mask(_save(tmp_path / "rgba.png", rgba, "RGBA"))[0, 0], expected)
    assert torch.equal(read_mask(_save(tmp_path / "la.png", gray_alpha, "LA"))[0, 0], expected)
    opaque_mask = read_mask(_save(tmp_path / "opaque.png", opaque, "RGBA"))[0, 0]
    assert torch.equal(opaque_mask, torch.from_numpy(inside.astype(np.float32)))


def test_mask_size_mismatch_names_both_sizes_and_files(tmp_path):
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "m_1.png")

    with pytest.raises(HarmonyError) as info:
        read_mask(tmp_path / "m_1.png", size=(32, 40), image_path=tmp_path / "m_1_1.jpg")

    message = str(info.value)
    assert "30x40" in message and "32x40" in message
    assert str(tmp_path / "m_1.png") in message and str(tmp_path / "m_1_1.jpg") in message


def test_no_overwrite_without_force(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"original")
    image = _as_tensor(_pixels(4, 4, 3, np.uint8))

    with pytest.raises(HarmonyError, match="--force"):
        write_image(path, image)
    assert path.read_bytes() == b"original"

    write_image(path, image, force=True)
    np.testing.assert_array_equal(_levels(read_image(path)[0], 8), _levels(image, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left


def test_write_creates_missing_folders_and_refuses_a_folder(tmp_path):
    image = _as_tensor(_pixels(4, 4, 3, np.uint8))

    assert write_image(tmp_path / "a" / "b" / "out.png", image).is_file()
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(HarmonyError, match="folder"):
        write_image(tmp_path / "dir.png", image, force=True)


def test_write_rejects_non_finite_values_and_wrong_shapes(tmp_path):
    with pytest.raises(HarmonyError, match="NaN"):
        write_image(tmp_path / "nan.png", torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\[1,3,H,W\]"):
        write_image(tmp_path / "gray.png", torch.zeros(1, 1, 2, 2))
    assert not list(tmp_path.iterdir())


def _valid_png(tmp_path, bit_depth):
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return encode_png(_pixels(16, 16, 3, dtype))


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.png", None, "does not exist"),
        ("text.png", b"not an image at all", "corrupt or not an image"),
        ("cut8.png", lambda p: _valid_png(p, 8)[:-40], "corrupt or not an image"),
        ("cut16.png", lambda p: _valid_png(p, 16)[:-40], "corrupt or not an image"),
        ("flip16.png", lambda p: _valid_png(p, 16)[:60] + b"X" + _valid_png(p, 16)[61:], "CRC"),
    ],
)
def test_unreadable_files_raise_harmony_error_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content(tmp_path) if callable(content) else content)

    for read in (read_image, read_mask):
        with pytest.raises(HarmonyError, match=reason) as info:
            read(path)
        assert str(path) in str(info.value)


def test_folder_and_unsupported_format_are_rejected(tmp_path):
    Image.fromarray(_pixels(4, 4, 3, np.uint8)).save(tmp_path / "image.bmp")

    with pytest.raises(HarmonyError, match="folder"):
        read_image(tmp_path)
    with pytest.raises(HarmonyError, match="BMP image; expected PNG or JPEG"):
        read_image(tmp_path / "image.bmp")
