"""Image files <-> tensors: PNG (8/16-bit) and JPEG in, PNG (8/16-bit) and JPEG out.

Images are [1,3,H,W] float32 in [0,1]; masks are [1,1,H,W]. A JPEG's (or an 8-bit PNG's) EXIF
orientation is applied on read, to images and masks alike, so they are the pictures a viewer
shows, a mask drawn in an editor that applies the tag fits its composite, and outputs (written
without the tag) look like their inputs. An image's alpha channel is not read (a warning says
so when it is not opaque). Files over `MAX_PIXELS` are refused from their header, before
decoding. 16-bit PNGs go through `harmony.data.png` because Pillow reads 16-bit RGB(A) as 8-bit.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from harmony.data import png
from harmony.errors import HarmonyError, HarmonyWarning
from harmony.files import check_writable, write_bytes_atomic

PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
BIT_DEPTHS = (8, 16)
JPEG_QUALITY = 95

# Pillow formats accepted on read; MPO is the multi-picture JPEG many cameras write.
_READ_FORMATS = frozenset({"PNG", "JPEG", "MPO"})
# The most pixels a file may declare: where Pillow refuses a decompression bomb, applied to
# every file (the 16-bit PNGs this package decodes itself included).
MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
# EXIF's orientation tag, and the orientations that swap height and width.
_EXIF_ORIENTATION = 0x0112
_EXIF_TRANSPOSED = frozenset({5, 6, 7, 8})


def read_image(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Read an RGB image file.

    Args:
        path: a PNG (8- or 16-bit; gray, gray+alpha, RGB, RGBA or palette) or a JPEG.
    Returns:
        (image, bit_depth): image is [1,3,H,W] float32 in [0,1] (value / 255 or / 65535; gray is
        replicated to three channels; alpha is dropped, with a HarmonyWarning where it is not
        uniformly opaque); bit_depth is 16 for a 16-bit PNG, else 8.
    Raises:
        HarmonyError: the file is missing, a directory, not a PNG/JPEG, corrupt, or too large.
    """
    return decode_image(_read_bytes(Path(path)), path)


def decode_image(data: bytes, name: object) -> tuple[torch.Tensor, int]:
    """`read_image` of the bytes `data` of an image file, named `name` in messages."""
    pixels, bit_depth = _decode_pixels(data, name)
    if pixels.shape[2] in (2, 4) and (pixels[..., -1] != 2**bit_depth - 1).any():
        warnings.warn(
            f"{name} has an alpha channel that is not opaque; it is ignored: the colours are "
            "the composite (give the foreground region as the mask)",
            HarmonyWarning,
            stacklevel=2,
        )
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if pixels.shape[2] <= 2 else pixels[..., :3]
    return tensor_from_pixels(rgb, bit_depth), bit_depth


def read_mask(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    image_path: str | os.PathLike | None = None,
) -> torch.Tensor:
    """Read a mask file (`decode_mask` of its bytes)."""
    return decode_mask(_read_bytes(Path(path)), path, size, image_path)


def decode_mask(
    data: bytes,
    name: object,
    size: tuple[int, int] | None = None,
    image_name: object | None = None,
) -> torch.Tensor:
    """Decode a mask from the bytes `data` of its file (named `name` in messages): 1 (or white)
    = foreground, the region to harmonize.

    Which values are the mask, in order:

    1. the alpha channel, when the file has one (gray+alpha, RGBA, a palette with transparency)
       and it is not uniformly opaque;
    2. otherwise the largest colour channel of each pixel, so a white, gray or single-colour
       (e.g. green-on-black) mask reads the same;
    3. a mask whose values are only 0 and 1 (a label map) reads 1 as foreground; any other mask
       is scaled by its bit depth (value / 255 or / 65535), soft edges kept.

    Args:
        data: an 8- or 16-bit PNG, or a JPEG.
        size: (H, W) the mask must have; None (default) accepts any size.
        image_name: the image `size` comes from, named in the error message; None (default)
            names no image.
    Returns:
        [1,1,H,W] float32 in [0,1] (all zero for an empty mask: the caller decides to warn).
    Raises:
        HarmonyError: the file cannot be read (see `read_image`), or its size differs from `size`.
    """
    pixels, bit_depth = _decode_pixels(data, name)
    height, width = pixels.shape[:2]
    if size is not None and (height, width) != tuple(size):
        against = f"the image {image_name}" if image_name is not None else "the expected size"
        raise HarmonyError(
            f"Mask {name} is {_hw(height, width)} (HxW) but {against} is "
            f"{_hw(*size)}; expected a mask of the same size as its image. Resize the mask to "
            f"{_hw(*size)} or pass the image it was made for."
        )
    full = 2**bit_depth - 1
    channels = pixels.shape[2]
    if channels in (2, 4) and (pixels[..., -1] != full).any():
        plane = pixels[..., -1]
    else:
        plane = pixels[..., : 1 if channels <= 2 else 3].max(axis=2)
    if plane.max() == 1:  # a 0/1 label map
        return torch.from_numpy(plane.astype(np.float32))[None, None]
    return tensor_from_pixels(plane[..., None], bit_depth)


def mask_problems(image_path: Path, mask_path: Path, mask: torch.Tensor) -> list[str]:
    """What is odd about a mask that the run goes on with: the composite given as its own mask,
    a mask with no foreground, or one that is all foreground."""
    problems = []
    if image_path.exists() and mask_path.exists() and image_path.samefile(mask_path):
        problems.append(
            f"the mask {mask_path} is the composite itself: its brightest channel is read as "
            "the foreground; pass the mask of the pasted region"
        )
    if not bool(mask.any()):
        problems.append(
            f"the mask {mask_path} is empty (no foreground): the output equals the composite"
        )
    elif bool((mask >= 1).all()):
        problems.append(
            f"the mask {mask_path} covers the whole image (every pixel is foreground): there is "
            "no background to harmonize it with"
        )
    return problems


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of the image `read_image` would return (EXIF orientation applied), from its header,
    the file's structure checked without decoding its full pixels (PNG: chunks and CRCs; JPEG:
    decoded at 1/8 scale, which finds a truncated file).

    Raises:
        HarmonyError: as `read_image` would for a missing, foreign, corrupt or too large file.
    """
    path = Path(path)
    if not path.is_file():
        raise HarmonyError(f"Image file {path} does not exist. Check the path.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
        if head[:8] == png.SIGNATURE and png.png_header(head)[2] == 16:
            height, width = png.png_header(head)[:2]
            _check_pixels(path, height, width)
            png.zlib_payload(path.read_bytes())  # chunk structure and CRCs
            return height, width
        with Image.open(path) as image:
            if image.format not in _READ_FORMATS:
                raise HarmonyError(
                    f"{path} is a {image.format} image; expected PNG or JPEG. Convert it to PNG."
                )
            _check_pixels(path, image.height, image.width)
            image.verify()  # (Pillow: only right after opening)
        with Image.open(path) as image:
            turned = image.getexif().get(_EXIF_ORIENTATION, 1) in _EXIF_TRANSPOSED
            size = (image.width, image.height) if turned else (image.height, image.width)
            if image.format == "JPEG":  # verify() reads no JPEG data: decode at 1/8 scale
                image.draft(image.mode, (image.width // 8, image.height // 8))
                image.load()  # a truncated file raises OSError here
            return size
    except HarmonyError:
        raise
    except Image.DecompressionBombError as exc:
        raise HarmonyError(f"{path} is too large ({exc}). Downscale the image.") from None
    except (UnidentifiedImageError, png.PngFormatError, OSError, ValueError, SyntaxError) as exc:
        raise HarmonyError(
            f"Cannot decode {path}: expected a valid PNG or JPEG image, but it is corrupt or not "
            f"an image ({exc}). Re-export or replace the file."
        ) from None


def check_image_output(path: str | os.PathLike, bit_depth: int = 8, force: bool = False) -> Path:
    """Raise HarmonyError unless `write_image(path, ..., bit_depth, force)` can succeed: the
    suffix, the bit depth for that format and the destination (`check_writable`). Run it before
    the work that produces the image."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PNG_SUFFIXES + JPEG_SUFFIXES:
        raise HarmonyError(
            f"Cannot write {path}: expected a .png, .jpg or .jpeg file name, received "
            f"suffix {path.suffix!r}. Change the output file name."
        )
    if bit_depth not in BIT_DEPTHS:
        raise HarmonyError(f"Bit depth must be 8 or 16, received {bit_depth!r}.")
    if suffix in JPEG_SUFFIXES and bit_depth != 8:
        raise HarmonyError(
            f"Cannot write {path} with {bit_depth} bits: JPEG stores 8 bits per channel. "
            "Write a .png file or use bit depth 8."
        )
    return check_writable(path, force)


def write_image(
    path: str | os.PathLike, image: torch.Tensor, bit_depth: int = 8, force: bool = False
) -> Path:
    """Write an RGB image atomically (temporary file in the same folder, then rename).

    Args:
        path: destination; the suffix picks the format: .png (8 or 16 bit) or .jpg/.jpeg (8 bit,
            quality 95, no chroma subsampling). Missing parent folders are created.
        image: [1,3,H,W] or [3,H,W] floating point; values are clamped to [0,1] and rounded to
            the nearest of the 2**bit_depth levels.
        bit_depth: 8 (default) or 16.
        force: replace an existing file; False (default) refuses to.
    Returns:
        The path written.
    Raises:
        HarmonyError: unsupported suffix or bit depth, non-finite pixels, an existing file
            without `force`, or an unwritable destination.
        ValueError: `image` is not a floating-point [1,3,H,W] / [3,H,W] tensor (a caller bug).
    """
    path = check_image_output(path, bit_depth, force)
    write_bytes_atomic(path, encode_image(image, bit_depth, path.suffix), force)
    return path


def encode_image(image: torch.Tensor, bit_depth: int = 8, suffix: str = ".png") -> bytes:
    """The bytes `write_image` writes for `image` in the format of `suffix` (.png, .jpg)."""
    pixels = _to_pixels(image, bit_depth)
    if suffix.lower() in PNG_SUFFIXES:
        return png.encode_png(pixels)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise HarmonyError(f"Image file {path} does not exist. Check the path.")
    if path.is_dir():
        raise HarmonyError(f"{path} is a folder; expected a PNG or JPEG image file.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HarmonyError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _decode_pixels(data: bytes, path: object) -> tuple[np.ndarray, int]:
    """Return ([H,W,C] uint8/uint16 with C in 1..4, bit_depth) of the file bytes `data` (named
    `path` in messages) or raise a HarmonyError."""
    try:
        if data[:8] == png.SIGNATURE:
            height, width, bit_depth = png.png_header(data)[:3]
            _check_pixels(path, height, width)
            if bit_depth == 16:
                return png.decode_png(data), 16
        return _pixels_from_pillow(path, data), 8
    except HarmonyError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refused it when opening
        raise HarmonyError(
            f"{path} is too large ({exc}); harmony reads at most {MAX_PIXELS / 1e6:.0f} "
            "megapixels. Downscale the image."
        ) from None
    except UnidentifiedImageError:
        raise HarmonyError(
            f"Cannot decode {path}: expected a PNG or JPEG image, but its content is not a "
            "recognized image format (corrupt or not an image). Re-export or replace the file."
        ) from None
    except (png.PngFormatError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise HarmonyError(
            f"Cannot decode {path}: expected a valid PNG or JPEG image, but it is corrupt or not "
            f"an image ({exc}). Re-export or replace the file."
        ) from None


def _check_pixels(path: object, height: int, width: int) -> None:
    """Refuse a file declaring more than MAX_PIXELS, before it is decoded."""
    if height * width > MAX_PIXELS:
        raise HarmonyError(
            f"{path} is {_hw(height, width)} (HxW), {height * width / 1e6:.0f} megapixels: too "
            f"large, more than the {MAX_PIXELS / 1e6:.0f} megapixels harmony reads (a guard "
            "against decompression bombs). Downscale the image."
        )


def _pixels_from_pillow(path: object, data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        if image.format not in _READ_FORMATS:
            raise HarmonyError(
                f"{path} is a {image.format} image; expected PNG or JPEG. Convert it to PNG."
            )
        _check_pixels(path, image.height, image.width)
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode == "1":
            image = image.convert("L")
        elif image.mode in ("P", "PA"):
            image = image.convert("RGBA")
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            raise HarmonyError(
                f"{path} has {image.mode} pixels; expected gray or RGB(A) pixels. Convert it "
                "to an RGB PNG."
            )
        pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def tensor_from_pixels(pixels: np.ndarray, bit_depth: int) -> torch.Tensor:
    """[H,W,C] integer levels of `bit_depth` bits -> [1,C,H,W] float32 in [0,1]."""
    scaled = pixels.astype(np.float32) / np.float32(2**bit_depth - 1)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))[None]


def _to_pixels(image: torch.Tensor, bit_depth: int) -> np.ndarray:
    """[1,3,H,W] / [3,H,W] float in [0,1] -> [H,W,3] uint8/uint16, rounded to nearest."""
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise ValueError(f"image must be a floating-point tensor, got {type(image).__name__}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [1,3,H,W] or [3,H,W], got {list(image.shape)}")
    values = image.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(values).all():
        raise HarmonyError(
            "The image to write contains NaN or infinite values; expected finite values in "
            "[0,1]. Check the model output."
        )
    levels = 2**bit_depth - 1
    quantized = np.rint(np.clip(values, 0.0, 1.0) * levels)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.ascontiguousarray(quantized.transpose(1, 2, 0), dtype=dtype)


def _hw(height: int, width: int) -> str:
    return f"{height}x{width}"
