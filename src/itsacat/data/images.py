"""Decoding and preprocessing of pictures: the one path from image bytes to model input.

Training from an image folder, `itsacat predict` and the prediction service all call
`decode_image` then `to_input_column`, so a picture is turned into numbers the same way
everywhere.

Conversion rules, applied in this order:
- the format is decided by the file's content, never by its name or a Content-Type;
- the pixel count is checked from the header, before any pixel is decoded;
- EXIF orientation is applied before resizing;
- animated images (GIF, WebP, APNG) and multi-page TIFFs use their first frame, and
  `DecodedImage.frames` reports how many the source had;
- transparency is composited on white, so colours hidden under alpha 0 never show;
- 16-bit channels are scaled to 8 bits (divided by 257), not clipped;
- palette, grayscale, CMYK and every other mode become 8-bit RGB;
- large JPEGs are decoded at a reduced scale of at least 256×256 first, to save time;
- the picture is resized to 64×64 with Lanczos resampling, ignoring its aspect ratio, as the
  training data was made.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from itsacat.data.errors import ImageError

IMAGE_SIZE = 64
N_X = IMAGE_SIZE * IMAGE_SIZE * 3
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
DEFAULT_MAX_PIXELS = 50_000_000
BACKGROUND = (255, 255, 255)


@dataclass
class DecodedImage:
    """A picture converted to 8-bit RGB at 64×64, with where it came from."""

    pixels: np.ndarray  # (64, 64, 3) uint8
    format: str
    original_size: tuple[int, int]
    frames: int  # frames in the source; only the first is used


def decode_image(data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> DecodedImage:
    """Decode image bytes into a 64×64 8-bit RGB picture.

    Raises `ImageError` with code `empty_image`, `unsupported_format`, `too_many_pixels` or
    `undecodable_image`, naming `name` and the problem.
    """
    if not data:
        raise ImageError("empty_image", f"{name}: the image is empty (0 bytes); check that "
                         "the file or upload is complete")
    image = _open_checked(data, name, max_pixels)

    image_format, size = image.format, (image.width, image.height)
    try:
        frames = getattr(image, "n_frames", 1)
        image.seek(0)
        # JPEG can decode at 1/2, 1/4 or 1/8 scale for almost nothing; keeping at least
        # 4× the target size leaves the final Lanczos resize in charge of the result.
        image.draft(image.mode, (4 * IMAGE_SIZE, 4 * IMAGE_SIZE))
        image.load()
        rgb = to_rgb8(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError("undecodable_image", f"{name}: the {image_format} image is corrupt "
                         f"or truncated ({error})") from None

    resized = rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return DecodedImage(np.asarray(resized, dtype=np.uint8), image_format, size, frames)


def _open_checked(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open the image lazily (header only) and check its format and pixel count."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        detected = sniff_format(data)
        if detected:
            raise ImageError("unsupported_format", f"{name}: {detected} images are not "
                             f"supported; send one of {', '.join(SUPPORTED_FORMATS)}") from None
        raise ImageError("undecodable_image", f"{name}: not a recognised image format; send "
                         f"one of {', '.join(SUPPORTED_FORMATS)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own bomb check runs inside open(), before ours can see the size; its
        # message carries the declared pixel count.
        declared = re.search(r"\((\d+) pixels\)", str(error))
        count = f"{int(declared.group(1)):,} pixels" if declared else "more pixels"
        raise ImageError("too_many_pixels", f"{name}: the image header declares {count}, "
                         f"over the limit of {max_pixels:,}; send a smaller picture") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError("undecodable_image", f"{name}: cannot read the image header "
                         f"({error})") from None

    if image.format not in SUPPORTED_FORMATS:
        raise ImageError("unsupported_format", f"{name}: {image.format} images are not "
                         f"supported; send one of {', '.join(SUPPORTED_FORMATS)}")
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageError("too_many_pixels", f"{name}: {image.width}×{image.height} is "
                         f"{pixels:,} pixels, over the limit of {max_pixels:,}; send a "
                         "smaller picture")
    return image


def sniff_format(data: bytes) -> str | None:
    """Name a few common formats that Pillow cannot decode, from their magic bytes."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    if data.startswith(b"%PDF"):
        return "PDF"
    if data[:256].lstrip().startswith((b"<svg", b"<?xml")):
        return "SVG"
    return None


def to_rgb8(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB by the rules in this module's docstring."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's own "I" → "L" conversion clips at 255; scale the 16-bit range instead.
        scaled = np.asarray(image, dtype=np.uint32) // 257
        image = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA") or (image.mode == "L" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read and decode a picture from disk; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError("not_found", f"{path}: file not found") from None
    except OSError as error:
        raise ImageError("unreadable", f"{path}: cannot read the file ({error})") from None
    return decode_image(data, str(path), max_pixels)


def to_input_column(pixels: np.ndarray, dtype: str = "float64") -> np.ndarray:
    """Flatten 64×64×3 uint8 pixels into one input column `(12288, 1)` scaled by 1/255."""
    return (pixels.reshape(-1, 1).astype(dtype) / 255.0).astype(dtype, copy=False)
