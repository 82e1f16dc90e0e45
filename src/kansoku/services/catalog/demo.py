"""Demo data: 200 products in 8 categories, the same on every machine, each named and
described in English and Japanese.

Generated from fixed word lists rather than random numbers, so a product a tutorial
mentions by name exists for every reader.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.catalog import store
from kansoku.services.catalog.models import Category, Product

#: slug, name (English, Japanese), the kinds of thing it sells (English, Japanese), and a
#: base price in dollars.
_CATEGORIES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], int], ...] = (
    ("telescopes", "Telescopes", "望遠鏡", (
        ("Refractor", "屈折式望遠鏡"), ("Reflector", "反射式望遠鏡"),
        ("Dobsonian", "ドブソニアン望遠鏡"), ("Travel Scope", "トラベルスコープ"),
        ("Solar Telescope", "太陽望遠鏡")), 240),
    ("binoculars", "Binoculars", "双眼鏡", (
        ("Binoculars 10x50", "双眼鏡 10x50"), ("Binoculars 8x42", "双眼鏡 8x42"),
        ("Image-Stabilised Binoculars", "防振双眼鏡"), ("Opera Glasses", "オペラグラス"),
        ("Marine Binoculars", "マリン双眼鏡")), 90),
    ("eyepieces", "Eyepieces", "アイピース", (
        ("Wide-Field Eyepiece", "広視界アイピース"), ("Plössl Eyepiece", "プローセルアイピース"),
        ("Zoom Eyepiece", "ズームアイピース"), ("Barlow Lens", "バローレンズ"),
        ("Reticle Eyepiece", "レチクル付きアイピース")), 45),
    ("mounts", "Mounts & Tripods", "架台・三脚", (
        ("Alt-Az Mount", "経緯台"), ("Equatorial Mount", "赤道儀"), ("Tripod", "三脚"),
        ("Pier", "ピラー脚"), ("Tracking Head", "自動追尾雲台")), 160),
    ("filters", "Filters", "フィルター", (
        ("Moon Filter", "ムーンフィルター"), ("Nebula Filter", "星雲フィルター"),
        ("Colour Filter Set", "カラーフィルターセット"), ("Solar Film", "太陽観測用フィルム"),
        ("Light-Pollution Filter", "光害カットフィルター")), 30),
    ("cameras", "Astro Cameras", "天体カメラ", (
        ("Planetary Camera", "惑星撮影用カメラ"), ("Guide Camera", "オートガイド用カメラ"),
        ("Cooled CMOS Camera", "冷却CMOSカメラ"), ("Camera Adapter", "カメラアダプター"),
        ("Intervalometer", "インターバルタイマー")), 180),
    ("books", "Books & Charts", "書籍・星図", (
        ("Star Atlas", "星図"), ("Observing Guide", "観測ガイドブック"),
        ("Planisphere", "星座早見盤"), ("Moon Map", "月面図"),
        ("Deep-Sky Handbook", "星雲・星団ハンドブック")), 18),
    ("accessories", "Accessories", "アクセサリー", (
        ("Red Flashlight", "赤色ライト"), ("Dew Heater", "結露防止ヒーター"),
        ("Observing Chair", "観測用チェア"), ("Power Tank", "ポータブル電源"),
        ("Carry Case", "キャリーケース")), 25),
)

#: Five lines of each kind, so 8 categories x 5 kinds x 5 lines = 200 products: the line's
#: name (English, Japanese), what it is like (English, Japanese), and its price factor.
_LINES: tuple[tuple[str, str, str, str, Decimal], ...] = (
    ("Orion", "オリオン", "entry-level, light and forgiving",
     "はじめての一台に最適な、軽くて扱いやすいモデルです。", Decimal("0.8")),
    ("Lyra", "リラ", "a well-balanced all-rounder",
     "どんな場面にも使える、バランスのよいモデルです。", Decimal("1.0")),
    ("Vega", "ベガ", "sharp optics for the keen observer",
     "細部まで見たい方のための、シャープな光学性能を備えたモデルです。", Decimal("1.35")),
    ("Cygnus", "シグナス", "built for dark-sky nights and long sessions",
     "暗い夜空の下での長時間の観測に向けて作られたモデルです。", Decimal("1.7")),
    ("Andromeda", "アンドロメダ", "the flagship: nothing held back",
     "一切の妥協なく仕上げたフラッグシップモデルです。", Decimal("2.4")),
)


def demo_catalog() -> tuple[list[Category], list[Product]]:
    """The demo's categories and products, each named and described in English and
    Japanese."""
    categories: list[Category] = []
    products: list[Product] = []
    for slug, name, name_ja, kinds, base_price in _CATEGORIES:
        # No explicit ids: the database assigns them, so its sequences stay right for
        # the rows an admin adds later.
        category = Category(slug=slug, name=name, name_ja=name_ja)
        categories.append(category)
        for kind_number, (kind, kind_ja) in enumerate(kinds):
            for line_number, (line, line_ja, blurb, blurb_ja, factor) in enumerate(_LINES):
                # Prices end in .99 or .49 and vary a little between kinds.
                price = (Decimal(base_price) * factor * (1 + Decimal(kind_number) / 10))
                cents = Decimal("0.99") if line_number % 2 == 0 else Decimal("0.49")
                products.append(
                    Product(
                        sku=f"{slug[:3].upper()}-{kind_number + 1}{line_number + 1:02d}",
                        name=f"{line} {kind}",
                        description=f"{line} {kind.lower()}: {blurb}.",
                        name_ja=f"{line_ja} {kind_ja}",
                        description_ja=f"{line_ja} {kind_ja}。{blurb_ja}",
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
