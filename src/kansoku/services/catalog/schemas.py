"""What the catalog's API accepts and returns."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from kansoku.kit import i18n
from kansoku.kit.fields import Price, Text

#: The gateway's public API root: image URLs are given as paths under it.
PUBLIC_ROOT = "/api/v1"

#: How a product list can be sorted ("-price": most expensive first).
ProductSort = Literal["id", "name", "price", "-price", "newest"]


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    #: In the language the request asked for (Accept-Language), else English.
    name: str
    name_ja: str | None = Field(None, description="The name in Japanese, if it has one")

    def localized(self) -> CategoryOut:
        """This category as a reader of the current language sees it."""
        if i18n.current_language() == i18n.Language.JAPANESE and self.name_ja:
            return self.model_copy(update={"name": self.name_ja})
        return self


class ProductText(BaseModel):
    """A product's words in one language."""

    name: str
    description: str


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    #: Name and description in the language the request asked for (Accept-Language:
    #: ja or en), else English; `texts` has every language's, for editing.
    name: str
    description: str
    texts: dict[str, ProductText] = Field(
        default_factory=dict, description="The name and description by language (en, ja)")
    price: Decimal = Field(description="Decimal as a string, e.g. \"19.99\"")
    currency: str
    category: CategoryOut
    #: Which uploaded image is current; None while the product shows its generated
    #: picture.
    image_version: int | None = None
    thumbnail_ready: bool = False

    def localized(self) -> ProductOut:
        """This product as a reader of the current language sees it: its name and
        description in that language when it has them, its category's name too."""
        words = self.texts.get(str(i18n.current_language()))
        update: dict[str, object] = {"category": self.category.localized()}
        if words is not None:
            update.update(name=words.name, description=words.description)
        return self.model_copy(update=update)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def image_url(self) -> str:
        """Where clients fetch the image: a path of the public API, which changes with
        every upload (so it can be cached for good)."""
        return f"{PUBLIC_ROOT}/products/{self.id}/image?v={self.image_version or 0}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def thumbnail_url(self) -> str | None:
        """The small version; None while the worker is still making it."""
        if self.image_version is not None and not self.thumbnail_ready:
            return None
        return f"{PUBLIC_ROOT}/products/{self.id}/thumbnail?v={self.image_version or 0}"


class ProductIn(BaseModel):
    """A product as an admin creates or replaces it."""

    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=5000)
    price: Price
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    #: A category slug; products without one go to "uncategorized".
    category: Text | None = Field(None, max_length=64)
    sku: Text | None = Field(None, min_length=1, max_length=32)
    #: The name and description in Japanese (optional: without them Japanese readers
    #: see the English).
    name_ja: Text | None = Field(None, max_length=200)
    description_ja: Text | None = Field(None, max_length=5000)


class ProductPage(BaseModel):
    items: list[ProductOut]
    total: int
    limit: int
    offset: int

    def localized(self) -> ProductPage:
        return self.model_copy(update={"items": [item.localized() for item in self.items]})
