"""Product pictures: the generated picture every product has until an admin uploads a
photo, and the checks an upload must pass.

The generated picture is a small SVG drawn from the product itself — its category picks
the colours and the symbol, its id scatters the stars — so 200 demo products each get a
distinct image without shipping 200 files, and a product an admin adds has one at once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

from PIL import Image, UnidentifiedImageError

from kansoku.kit.i18n import _

#: What uploads may be, by the format Pillow finds in the bytes (never the client's
#: claim): raster formats only, because an uploaded SVG could carry script.
UPLOAD_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
                "GIF": "image/gif"}
SVG_TYPE = "image/svg+xml"

#: Category slug -> (two background colours, the symbol drawn in the middle).
_STYLE: dict[str, tuple[str, str, str]] = {
    "telescopes": ("#1b2a4a", "#3c5a99",
                   '<g transform="rotate(-28 200 170)"><rect x="95" y="148" width="210" '
                   'height="46" rx="10" fill="#f2f2f2"/><rect x="290" y="140" width="34" '
                   'height="62" rx="6" fill="#d0d6e2"/></g><path d="M200 200 L160 300 '
                   'M200 200 L240 300 M200 200 L200 305" stroke="#f2f2f2" stroke-width="7"/>'),
    "binoculars": ("#20323a", "#3f7a78",
                   '<circle cx="150" cy="190" r="52" fill="#f2f2f2"/><circle cx="250" cy="190" '
                   'r="52" fill="#f2f2f2"/><circle cx="150" cy="190" r="30" fill="#2b4a55"/>'
                   '<circle cx="250" cy="190" r="30" fill="#2b4a55"/><rect x="185" y="150" '
                   'width="30" height="40" fill="#d0d6e2"/>'),
    "eyepieces": ("#2c1f3d", "#6a4c93",
                  '<rect x="160" y="110" width="80" height="150" rx="12" fill="#f2f2f2"/>'
                  '<rect x="150" y="230" width="100" height="40" rx="8" fill="#d0d6e2"/>'
                  '<ellipse cx="200" cy="112" rx="34" ry="10" fill="#6a4c93"/>'),
    "mounts": ("#2e2a24", "#8a6d3b",
               '<rect x="170" y="110" width="60" height="60" rx="8" fill="#f2f2f2"/>'
               '<path d="M200 170 L130 300 M200 170 L270 300 M200 170 L200 310" '
               'stroke="#f2f2f2" stroke-width="9" stroke-linecap="round"/>'),
    "filters": ("#12303a", "#1f7a8c",
                '<circle cx="200" cy="190" r="80" fill="none" stroke="#f2f2f2" '
                'stroke-width="16"/><circle cx="200" cy="190" r="64" fill="#7fd1ae" '
                'fill-opacity="0.55"/>'),
    "cameras": ("#262626", "#5a5a5a",
                '<rect x="110" y="130" width="180" height="120" rx="14" fill="#f2f2f2"/>'
                '<circle cx="200" cy="190" r="42" fill="#333"/><circle cx="200" cy="190" '
                'r="22" fill="#5b8def"/><rect x="130" y="116" width="40" height="18" rx="4" '
                'fill="#d0d6e2"/>'),
    "books": ("#3a1f1f", "#9c4a3c",
              '<rect x="120" y="110" width="160" height="170" rx="6" fill="#f2f2f2"/>'
              '<rect x="120" y="110" width="22" height="170" fill="#d0d6e2"/>'
              '<path d="M165 160 h90 M165 190 h90 M165 220 h60" stroke="#9c4a3c" '
              'stroke-width="8"/>'),
    "accessories": ("#1f2b1f", "#4f7a3c",
                    '<path d="M200 105 L222 165 L285 165 L234 202 L254 265 L200 228 '
                    'L146 265 L166 202 L115 165 L178 165 Z" fill="#f2f2f2"/>'),
}
_DEFAULT_STYLE = ("#22303c", "#56677a",
                  '<rect x="135" y="125" width="130" height="130" rx="18" fill="#f2f2f2"/>')


def generated_picture(product_id: int, name: str, category_slug: str) -> bytes:
    """The product's generated picture, as SVG: always the same for the same product."""
    top, bottom, symbol = _STYLE.get(category_slug, _DEFAULT_STYLE)
    # The product id seeds the stars, so products of one category still differ.
    seed = hashlib.sha256(f"kansoku-product-{product_id}".encode()).digest()
    stars = "".join(
        f'<circle cx="{seed[i] * 400 // 256}" cy="{seed[i + 1] * 90 // 256 + 8}" '
        f'r="{1 + seed[i + 2] % 3}" fill="#fff" fill-opacity="0.8"/>'
        for i in range(0, 30, 3))
    label = escape(name if len(name) <= 34 else name[:33] + "…")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" width="400" '
        f'height="400" role="img"><title>{label}</title>'
        f'<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop offset="0" '
        f'stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/></linearGradient>'
        '</defs><rect width="400" height="400" fill="url(#bg)"/>'
        f'{stars}{symbol}<rect y="330" width="400" height="70" fill="#000" '
        'fill-opacity="0.35"/><text x="200" y="373" text-anchor="middle" '
        'font-family="system-ui, sans-serif" font-size="24" fill="#fff">'
        f'{label}</text></svg>'
    ).encode()


class BadImage(ValueError):
    """The upload is not an image kansoku accepts; the message says why, for a person."""


@dataclass(frozen=True)
class ImageFacts:
    content_type: str
    width: int
    height: int


def inspect(data: bytes, *, max_pixels: int) -> ImageFacts:
    """Check that `data` is a whole PNG, JPEG, WebP or GIF of at most `max_pixels`.

    Reads the header first, so a small file that claims enormous dimensions (a
    decompression bomb) is refused before anything is decoded. CPU-bound: call it in a
    thread.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            width, height = image.size
            if kind not in UPLOAD_TYPES:
                raise BadImage((_("{kind} files are not accepted: upload a PNG, JPEG, WebP "
                                  "or GIF image.") if kind else
                                _("This file is not accepted: upload a PNG, JPEG, WebP or "
                                  "GIF image.")).format(kind=kind))
            if width * height > max_pixels:
                raise BadImage(_("The image is {width}x{height} pixels, more than the "
                                 "{most} pixels allowed: scale it down.").format(
                                     width=width, height=height, most=f"{max_pixels:,}"))
            image.verify()
    except BadImage:
        raise
    except Image.DecompressionBombError:
        raise BadImage(_("The image has far more than the {most} pixels allowed: scale it "
                         "down.").format(most=f"{max_pixels:,}")) from None
    except UnidentifiedImageError:
        raise BadImage(_("The file is not an image: upload a PNG, JPEG, WebP or GIF."
                         )) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # The decoder's own words, for whoever looks into the file.
        raise BadImage(_("The image is damaged or cut short ({reason}).").format(
            reason=exc)) from None
    return ImageFacts(UPLOAD_TYPES[kind], width, height)
