"""Demo data: 200 products in 8 categories, the same on every machine.

Generated from fixed word lists rather than random numbers, so a product a tutorial
mentions by name exists for every reader.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.catalog import store
from kansoku.services.catalog.models import Category, Product

#: slug, name, the kinds of thing it sells, and a base price in dollars.
_CATEGORIES: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("telescopes", "Telescopes", ("Refractor", "Reflector", "Dobsonian", "Travel Scope",
                                  "Solar Telescope"), 240),
    ("binoculars", "Binoculars", ("Binoculars 10x50", "Binoculars 8x42", "Image-Stabilised "
                                  "Binoculars", "Opera Glasses", "Marine Binoculars"), 90),
    ("eyepieces", "Eyepieces", ("Wide-Field Eyepiece", "Plössl Eyepiece", "Zoom Eyepiece",
                                "Barlow Lens", "Reticle Eyepiece"), 45),
    ("mounts", "Mounts & Tripods", ("Alt-Az Mount", "Equatorial Mount", "Tripod", "Pier",
                                    "Tracking Head"), 160),
    ("filters", "Filters", ("Moon Filter", "Nebula Filter", "Colour Filter Set",
                            "Solar Film", "Light-Pollution Filter"), 30),
    ("cameras", "Astro Cameras", ("Planetary Camera", "Guide Camera", "Cooled CMOS Camera",
                                  "Camera Adapter", "Intervalometer"), 180),
    ("books", "Books & Charts", ("Star Atlas", "Observing Guide", "Planisphere",
                                 "Moon Map", "Deep-Sky Handbook"), 18),
    ("accessories", "Accessories", ("Red Flashlight", "Dew Heater", "Observing Chair",
                                    "Power Tank", "Carry Case"), 25),
)

#: Five lines of each kind, so 8 categories x 5 kinds x 5 lines = 200 products.
_LINES: tuple[tuple[str, str, Decimal], ...] = (
    ("Orion", "entry-level, light and forgiving", Decimal("0.8")),
    ("Lyra", "a well-balanced all-rounder", Decimal("1.0")),
    ("Vega", "sharp optics for the keen observer", Decimal("1.35")),
    ("Cygnus", "built for dark-sky nights and long sessions", Decimal("1.7")),
    ("Andromeda", "the flagship: nothing held back", Decimal("2.4")),
)


def demo_catalog() -> tuple[list[Category], list[Product]]:
    categories: list[Category] = []
    products: list[Product] = []
    for slug, name, kinds, base_price in _CATEGORIES:
        # No explicit ids: the database assigns them, so its sequences stay right for
        # the rows an admin adds later.
        category = Category(slug=slug, name=name)
        categories.append(category)
        for kind_number, kind in enumerate(kinds):
            for line_number, (line, blurb, factor) in enumerate(_LINES):
                # Prices end in .99 or .49 and vary a little between kinds.
                price = (Decimal(base_price) * factor * (1 + Decimal(kind_number) / 10))
                cents = Decimal("0.99") if line_number % 2 == 0 else Decimal("0.49")
                products.append(
                    Product(
                        sku=f"{slug[:3].upper()}-{kind_number + 1}{line_number + 1:02d}",
                        name=f"{line} {kind}",
                        description=f"{line} {kind.lower()}: {blurb}.",
                        price=price.quantize(Decimal("1")) + cents,
                        currency="USD",
                        category=category,
                    )
                )
    return categories, products


async def seed(session: AsyncSession) -> int:
    """Insert the demo catalog if the catalog is empty. Returns how many products were added."""
    if await store.has_products(session):
        return 0
    categories, products = demo_catalog()
    await store.add_categories(session, categories)
    await store.add_products(session, products)
    return len(products)
