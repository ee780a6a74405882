"""Reading a user's image (a file, or the bytes of a web upload) into an RGB PIL image,
with limits checked before any pixel is decoded: a file over `max_bytes`, a picture
over `max_pixels` (a "decompression bomb": a 100 kB PNG can declare 50,000 x 50,000
pixels), and anything Pillow cannot identify are refused in one line. Nothing is
written anywhere: uploads are decoded from memory."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import MonosemanticError

MAX_IMAGE_BYTES = 16 * 1024 * 1024   # a 12-megapixel JPEG is ~5 MB; PNG screenshots stay well under this
MAX_IMAGE_PIXELS = 40_000_000        # ~ 8000 x 5000; processors resize to a few hundred pixels anyway
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(MonosemanticError):
    """An image that cannot be read: missing, too large, or not an image."""


def decode_image(data: bytes, name: str = "the upload", *, max_bytes: int = MAX_IMAGE_BYTES,
                 max_pixels: int = MAX_IMAGE_PIXELS):
    """bytes -> RGB PIL.Image. Only the header is parsed before the size checks."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError(f"{name} is empty: give a PNG, JPEG, GIF, BMP or WebP image")
    if len(data) > max_bytes:
        raise ImageError(f"{name} has {len(data):,} bytes; the limit is {max_bytes:,}: give a smaller image")
    try:
        image = Image.open(io.BytesIO(data))     # lazy: reads the header only
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageError(f"{name} is not an image Pillow can read ({type(e).__name__}): give a PNG, JPEG, GIF, "
                         f"BMP or WebP image") from None
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise ImageError(f"{name} is {width} x {height} pixels; the limit is {max_pixels:,} pixels: resize it")
    try:
        return image.convert("RGB")              # decodes the pixels (first frame of an animation)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name} is damaged and cannot be decoded ({e})") from None


def read_image(path: str | Path, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS):
    """A file -> RGB PIL.Image; the size is checked before the file is read."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} does not exist or is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"image {path} has {size:,} bytes; the limit is {max_bytes:,}: give a smaller image")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageError(f"image {path} cannot be read ({e.strerror or e})") from None
    return decode_image(data, f"image {path}", max_bytes=max_bytes, max_pixels=max_pixels)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly inside a folder (by suffix), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"image folder {folder} does not exist or is not a directory")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"image folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files
