import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from harmony.data.png import PngFormatError, decode_png, encode_png, unfilter, zlib_payload


def _photo_like(height, width, channels, seed=0):
    """Smooth gradients plus noise, so Pillow's adaptive filter picks all five filter types."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (y[..., None] * 3 + x[..., None] * np.arange(1, channels + 1)) % 256
    noise = rng.integers(0, 40, (height, width, channels)) * (x[..., None] % 7 == 0)
    return ((base + noise) % 256).astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_decode_matches_pillow_on_every_filter_type(mode):
    channels = len(mode)
    pixels = _photo_like(61, 47, channels)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(buffer, "PNG")
    data = buffer.getvalue()
    rows = np.frombuffer(zlib_payload(data), np.uint8).reshape(61, -1)
    assert set(rows[:, 0].tolist()) >= {1, 2, 4}  # the test exercises Sub, Up and Paeth

    decoded = decode_png(data)

    np.testing.assert_array_equal(decoded.reshape(pixels.shape), pixels)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter(raw, kinds):
    """Reference PNG filtering, byte by byte as the specification writes it."""
    height, _, pixel_bytes = raw.shape
    flat = raw.reshape(height, -1).astype(int)
    out = np.zeros_like(flat)
    for i in range(height):
        for j in range(flat.shape[1]):
            a = flat[i, j - pixel_bytes] if j >= pixel_bytes else 0
            b = flat[i - 1, j] if i else 0
            c = flat[i - 1, j - pixel_bytes] if i and j >= pixel_bytes else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kinds[i]]
            out[i, j] = (flat[i, j] - predictor) % 256
    return out.astype(np.uint8).reshape(raw.shape)


@pytest.mark.parametrize("pixel_bytes", [1, 3, 8])
def test_unfilter_inverts_every_filter_type(pixel_bytes):
    raw = np.random.default_rng(pixel_bytes).integers(0, 256, (12, 9, pixel_bytes)).astype(np.uint8)
    kinds = np.array([0, 1, 2, 3, 4, 3, 4, 4, 2, 1, 3, 0])

    np.testing.assert_array_equal(unfilter(_filter(raw, kinds), kinds), raw)


def test_unfilter_in_bands_matches_one_band(monkeypatch):
    raw = np.random.default_rng(0).integers(0, 256, (40, 5, 2)).astype(np.uint8)
    kinds = np.random.default_rng(1).integers(0, 5, 40)
    filtered = _filter(raw, kinds)
    monkeypatch.setattr("harmony.data.png._BAND_BYTES", 1)  # bands of 16 rows

    np.testing.assert_array_equal(unfilter(filtered, kinds), raw)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trip(channels):
    pixels = np.random.default_rng(channels).integers(0, 65536, (9, 13, channels)).astype(np.uint16)

    decoded = decode_png(encode_png(pixels))

    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, pixels)


def _chunk(kind, payload):
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


# The PNG specification's Adam7 figure: the pass (1-7) that carries each pixel of an 8x8 tile.
ADAM7_PATTERN = np.array(
    [
        [1, 6, 4, 6, 2, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [3, 6, 4, 6, 3, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
    ]
)


def _interlaced_png(pixels):
    """An RGB Adam7 PNG with unfiltered rows, written from the specification's pattern (Pillow
    cannot write one). Pass p holds, row by row, the pixels whose tile position is marked p."""
    height, width, _ = pixels.shape
    pass_of = np.tile(ADAM7_PATTERN, (-(-height // 8), -(-width // 8)))[:height, :width]
    big_endian = ">u2" if pixels.dtype == np.uint16 else "u1"
    stream = b""
    for number in range(1, 8):
        for row in range(height):
            columns = np.flatnonzero(pass_of[row] == number)
            if columns.size:
                stream += b"\x00" + pixels[row, columns].astype(big_endian).tobytes()
    bit_depth = 8 * pixels.dtype.itemsize
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(stream))
        + _chunk(b"IEND", b"")
    )


def test_the_interlaced_test_file_is_what_pillow_reads():
    """The oracle's own check: Pillow decodes an 8-bit file written this way to the pixels."""
    pixels = np.random.default_rng(1).integers(0, 256, (13, 11, 3)).astype(np.uint8)

    with Image.open(io.BytesIO(_interlaced_png(pixels))) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_decode_adam7_interlaced(dtype):
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(0).integers(0, top, (11, 10, 3), endpoint=True).astype(dtype)

    np.testing.assert_array_equal(decode_png(_interlaced_png(pixels)), pixels)


def test_encode_is_deterministic_and_rejects_other_dtypes():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 3)).astype(np.uint8)

    assert encode_png(pixels) == encode_png(pixels.copy())
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(pixels.astype(np.float32))


def test_palette_png_is_left_to_pillow():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).convert("P").save(buffer, "PNG")

    with pytest.raises(PngFormatError, match="colour type 3"):
        decode_png(buffer.getvalue())
