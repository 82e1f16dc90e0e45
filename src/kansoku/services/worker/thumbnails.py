"""Making a product image's thumbnail with Pillow: upright, within 320x320 with the
image's own proportions, as WebP.

Pure and CPU-bound: `make_thumbnail` takes bytes and returns bytes; call it in a thread
(`asyncio.to_thread`) so the event loop keeps serving while an image is decoded.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

#: The box a thumbnail fits in; the longer side touches it, the other keeps the ratio.
THUMBNAIL_BOX = (320, 320)
THUMBNAIL_CONTENT_TYPE = "image/webp"
#: WebP quality: small files that still look clean at thumbnail size.
WEBP_QUALITY = 80
#: The largest image decoded, in pixels (about 7000x7000). A small file can claim
#: enormous dimensions and decode into gigabytes (a decompression bomb), so the size
#: from the header is checked before any pixel is decoded.
MAX_PIXELS = 50_000_000
#: What catalog accepts as uploads; Pillow is not allowed to guess anything else.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


class UnusableImage(ValueError):
    """The bytes are not an image a thumbnail can be made from; the message says why."""


def make_thumbnail(data: bytes, *, max_pixels: int = MAX_PIXELS) -> bytes:
    """The thumbnail of the PNG, JPEG, WebP or GIF image in `data`, as WebP bytes.

    The image is turned upright first (cameras store portrait photos sideways with an
    EXIF orientation tag), then shrunk to fit `THUMBNAIL_BOX`; a smaller image is not
    enlarged. Transparency is kept. Raises `UnusableImage` for anything else.
    """
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnusableImage(f"the image is {width}x{height} pixels, more than the "
                                    f"{max_pixels:,} a thumbnail is made from")
            # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale, far faster than decoding a
            # big photo whole; ask for no less than twice the box, so the final resize
            # still has detail to work with. (Other formats ignore this.)
            image.draft(None, (THUMBNAIL_BOX[0] * 2, THUMBNAIL_BOX[1] * 2))
            upright = ImageOps.exif_transpose(image)
            # Shrinks in place, keeping the aspect ratio; never enlarges.
            upright.thumbnail(THUMBNAIL_BOX, Image.Resampling.LANCZOS)
            has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
                upright.mode == "P" and "transparency" in upright.info)
            output = io.BytesIO()
            upright.convert("RGBA" if has_alpha else "RGB").save(
                output, format="WEBP", quality=WEBP_QUALITY, method=4)
            return output.getvalue()
    except UnusableImage:
        raise
    except Image.DecompressionBombError as exc:
        raise UnusableImage(f"the image is far too large to decode ({exc})") from None
    except UnidentifiedImageError:
        raise UnusableImage("the data is not a PNG, JPEG, WebP or GIF image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusableImage(f"the image is damaged or cut short ({exc})") from None
