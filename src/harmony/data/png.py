"""A small PNG codec for 8- and 16-bit gray, gray+alpha, RGB and RGBA images.

Pillow (13 included) opens a 16-bit RGB or RGBA PNG as 8-bit "RGB"/"RGBA" and drops the low
byte, and cannot write one at all; this module decodes and encodes those files losslessly.
Palette and sub-byte images are left to Pillow, which reads them correctly.

Un-filtering is the costly part: the Average and Paeth filters make each byte depend on its
left, upper and upper-left neighbours, so a row cannot be undone in one vectorized step. Pixels
on one anti-diagonal (row + column = k) only depend on earlier anti-diagonals, so the rows are
stored skewed (anti-diagonal k is one contiguous row of a work array) and un-filtered one
anti-diagonal at a time, in bands of rows to bound the work array's size.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour type -> channels (gray, RGB, gray+alpha, RGBA); 3 (palette) is Pillow's job.
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_COLOR_TYPE = {channels: color_type for color_type, channels in _CHANNELS.items()}

# Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = (
    (0, 0, 8, 8),
    (0, 4, 8, 8),
    (4, 0, 8, 4),
    (0, 2, 4, 4),
    (2, 0, 4, 2),
    (0, 1, 2, 2),
    (1, 0, 2, 1),
)

# Upper bound on the skewed work array of one band (bytes).
_BAND_BYTES = 1 << 26


class PngFormatError(ValueError):
    """The bytes are not a PNG this codec can decode; the message says what is wrong."""


def png_header(data: bytes) -> tuple[int, int, int, int, int]:
    """Parse the IHDR chunk of PNG `data`.

    Returns:
        (height, width, bit_depth, color_type, interlace).
    Raises:
        PngFormatError: no PNG signature or no IHDR chunk first.
    """
    if data[:8] != SIGNATURE:
        raise PngFormatError("no PNG signature")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise PngFormatError("the IHDR chunk is missing or truncated")
    width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return height, width, bit_depth, color_type, interlace


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8- or 16-bit gray / gray+alpha / RGB / RGBA PNG.

    Args:
        data: the whole file.
    Returns:
        [H,W,C] uint8 (8-bit) or uint16 (16-bit) with C = 1 (gray), 2 (gray+alpha), 3 or 4.
        Ancillary chunks (gamma, ICC profile, tRNS) are ignored.
    Raises:
        PngFormatError: anything that is not such a PNG, or a corrupt one (bad CRC, short data).
    """
    height, width, bit_depth, color_type, interlace = png_header(data)
    if color_type not in _CHANNELS or bit_depth not in (8, 16):
        raise PngFormatError(
            f"colour type {color_type} with bit depth {bit_depth} is not handled by this codec"
        )
    if width == 0 or height == 0 or interlace not in (0, 1):
        raise PngFormatError(f"invalid header: {width}x{height}, interlace method {interlace}")
    raw = zlib_payload(data)
    channels = _CHANNELS[color_type]
    pixel_bytes = channels * bit_depth // 8
    if interlace == 0:
        image = _unfilter_checked(raw, 0, height, width, pixel_bytes)[0]
    else:
        # The passes hold every pixel once: check the length before allocating the image.
        if len(raw) < height * width * pixel_bytes:
            raise PngFormatError(f"the image data is short: {len(raw)} bytes")
        image = np.zeros((height, width, pixel_bytes), np.uint8)
        offset = 0
        for row0, col0, row_step, col_step in _ADAM7:
            rows = -(-(height - row0) // row_step)
            cols = -(-(width - col0) // col_step)
            if rows <= 0 or cols <= 0:
                continue
            sub, offset = _unfilter_checked(raw, offset, rows, cols, pixel_bytes)
            image[row0::row_step, col0::col_step] = sub
    if bit_depth == 16:
        return image.reshape(height, -1).view(">u2").astype(np.uint16).reshape(height, width, -1)
    return image.reshape(height, width, channels)


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode [H,W,C] uint8 or uint16 (C = 1, 2, 3 or 4) as a non-interlaced PNG.

    Every row uses the Up filter. The output depends only on the pixels and `compress_level`
    (no timestamps), so equal images give byte-identical files.
    """
    if image.ndim != 3 or image.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"expected [H,W,C] with C in 1..4, got shape {list(image.shape)}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    height, width, channels = image.shape
    bit_depth = 8 * image.dtype.itemsize
    rows = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">"))
    rows = rows.view(np.uint8).reshape(height, -1)
    up = np.empty((height, rows.shape[1] + 1), np.uint8)
    up[:, 0] = 2
    up[:, 1:] = rows
    up[1:, 1:] -= rows[:-1]  # uint8 arithmetic wraps modulo 256, as the filter specifies
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOR_TYPE[channels], 0, 0, 0)
    return b"".join(
        (
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(up.tobytes(), compress_level)),
            _chunk(b"IEND", b""),
        )
    )


def zlib_payload(data: bytes) -> bytes:
    """Check every chunk's CRC and return the inflated IDAT stream."""
    offset = 8
    idat = []
    while True:
        if offset + 8 > len(data):
            raise PngFormatError("the file ends before the IEND chunk (truncated)")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 8 + length
        if end + 4 > len(data):
            raise PngFormatError(f"chunk {kind!r} runs past the end of the file (truncated)")
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[offset + 4 : end]) != crc:
            raise PngFormatError(f"chunk {kind!r} has a bad CRC (corrupt file)")
        if kind == b"IDAT":
            idat.append(data[offset + 8 : end])
        elif kind == b"IEND":
            break
        offset = end + 4
    try:
        return zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PngFormatError(f"the image data does not inflate ({exc})") from None


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _unfilter_checked(
    raw: bytes, offset: int, rows: int, cols: int, pixel_bytes: int
) -> tuple[np.ndarray, int]:
    """Un-filter the `rows` x `cols` image that starts at `raw[offset]`; return it and the end."""
    end = offset + rows * (1 + cols * pixel_bytes)
    if len(raw) < end:
        raise PngFormatError(f"the image data is short: {len(raw)} bytes, expected {end}")
    block = np.frombuffer(raw, np.uint8, end - offset, offset).reshape(rows, -1)
    filters = block[:, 0]
    if filters.max() > 4:
        raise PngFormatError(f"unknown row filter type {int(filters.max())}")
    return unfilter(block[:, 1:].reshape(rows, cols, pixel_bytes), filters), end


def unfilter(filtered: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG row filtering.

    Args:
        filtered: [H,W,P] uint8, the filtered bytes of each pixel (P bytes per pixel).
        filters: [H] filter type of each row (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth).
    Returns:
        [H,W,P] uint8, the raw bytes.
    """
    height, width, pixel_bytes = filtered.shape
    band = min(height, 1024)
    while band > 16 and (band + width) * band * pixel_bytes > _BAND_BYTES:
        band //= 2
    out = np.empty_like(filtered)
    previous = np.zeros((width, pixel_bytes), np.uint8)
    for start in range(0, height, band):
        stop = min(height, start + band)
        out[start:stop] = _unfilter_band(filtered[start:stop], filters[start:stop], previous)
        previous = out[stop - 1]
    return out


def _unfilter_band(filtered: np.ndarray, filters: np.ndarray, previous: np.ndarray) -> np.ndarray:
    rows, width, pixel_bytes = filtered.shape
    # Pixel (i, j) lives at work[i + j + 2, i + 1]; row i = -1 holds the row above the band and
    # never-written cells (column -1) stay zero, as the filters define the missing neighbours.
    work = np.zeros((rows + width + 1, rows + 1, pixel_bytes), np.uint8)
    skewed = np.lib.stride_tricks.as_strided(
        work[1:, 0],
        shape=(rows + 1, width, pixel_bytes),
        strides=((rows + 2) * pixel_bytes, (rows + 1) * pixel_bytes, 1),
        writeable=True,
    )
    skewed[0] = previous
    skewed[1:] = filtered
    kinds = filters.astype(np.intp)[:, None]
    for k in range(rows + width - 1):
        lo, hi = max(0, k - width + 1), min(rows - 1, k) + 1
        x = work[k + 2, lo + 1 : hi + 1].astype(np.int16)
        left = work[k + 1, lo + 1 : hi + 1].astype(np.int16)
        up = work[k + 1, lo:hi].astype(np.int16)
        up_left = work[k, lo:hi].astype(np.int16)
        dist_left = np.abs(up - up_left)
        dist_up = np.abs(left - up_left)
        dist_up_left = np.abs(left + up - 2 * up_left)
        paeth = np.where(
            (dist_left <= dist_up) & (dist_left <= dist_up_left),
            left,
            np.where(dist_up <= dist_up_left, up, up_left),
        )
        predictor = np.choose(kinds[lo:hi], (0, left, up, (left + up) >> 1, paeth))
        work[k + 2, lo + 1 : hi + 1] = (x + predictor) & 255
    return skewed[1:].copy()
