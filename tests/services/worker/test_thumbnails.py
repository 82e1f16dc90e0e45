"""Thumbnails from real image bytes: upright, within 320x320 with the image's own
proportions, WebP; anything that is not a usable image is refused with a reason."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from kansoku.services.worker.thumbnails import THUMBNAIL_BOX, UnusableImage, make_thumbnail
from tests.services.worker.world import png


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    output = io.BytesIO()
    image.save(output, format=format, **options)
    return output.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims `width`x`height` and has no pixels: the shape of a
    decompression bomb, without the memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_tall_png_fits_the_box_and_keeps_its_proportions() -> None:
    thumbnail = opened(make_thumbnail(png(400, 1200)))
    assert thumbnail.format == "WEBP"
    width, height = thumbnail.size
    assert height == THUMBNAIL_BOX[1] and width <= THUMBNAIL_BOX[0]
    assert width / height == pytest.approx(400 / 1200, abs=0.01)


def test_a_wide_jpeg_fits_the_box_by_its_width() -> None:
    thumbnail = opened(make_thumbnail(encoded(Image.new("RGB", (2000, 500), "navy"), "JPEG")))
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == (320, 80)


def test_a_sideways_photo_is_turned_upright() -> None:
    """A camera stores a portrait photo as landscape pixels plus EXIF orientation 6
    ("rotate 90° clockwise to view"); the thumbnail is the portrait people see."""
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encoded(Image.new("RGB", (1200, 600), "olive"), "JPEG", exif=exif)
    assert opened(photo).size == (1200, 600)
    assert opened(make_thumbnail(photo)).size == (160, 320)


def test_a_small_image_is_not_enlarged_and_transparency_is_kept() -> None:
    icon = encoded(Image.new("RGBA", (100, 50), (255, 0, 0, 0)), "PNG")
    thumbnail = opened(make_thumbnail(icon))
    assert thumbnail.size == (100, 50)
    assert thumbnail.mode == "RGBA"
    assert thumbnail.getpixel((0, 0))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(("data", "reason"), [
    (b"this is not an image at all", "not a PNG, JPEG, WebP or GIF"),
    (encoded(Image.new("RGB", (10, 10)), "BMP"), "not a PNG, JPEG, WebP or GIF"),
    (png(300, 300)[:200], "damaged or cut short"),
    (png_claiming(40_000, 40_000), "far too large"),
    (png_claiming(8_000, 8_000), "8000x8000 pixels, more than the 50,000,000"),
], ids=["text", "bmp", "truncated", "bomb", "too-many-pixels"])
def test_what_is_not_a_usable_image_is_refused_with_a_reason(data: bytes, reason: str
                                                             ) -> None:
    with pytest.raises(UnusableImage, match=reason):
        make_thumbnail(data)
