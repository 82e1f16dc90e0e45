"""The public API's contract (`/api/v1`): what it accepts and returns.

These models are the documented, versioned surface; the services behind the gateway
have their own internal models and may change them without breaking callers. Every
answer is checked against its route's model on the way out, so what is documented is
what is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, create_model

from kansoku.kit.fields import DbId, Price, Text, UtcDateTime, Whole


class Registration(BaseModel):
    name: Text = Field(min_length=1, max_length=200, examples=["John Doe"])
    email: EmailStr = Field(examples=["john.doe@example.com"])
    #: repr=False: a password never shows up in a log line or a debugger's repr.
    password: str = Field(min_length=8, max_length=200, repr=False,
                          examples=["securepassword"])


class Credentials(BaseModel):
    email: EmailStr = Field(examples=["alice@example.com"])
    password: str = Field(min_length=1, max_length=200, repr=False,
                          examples=["alice-pass-1234"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200, repr=False)


class ProfileChange(BaseModel):
    """What to change; leave out what stays. A new e-mail address or password needs
    `current_password`: an access token alone is not enough to take an account over."""

    name: Text | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = Field(None, examples=["alice@example.com"])
    password: str | None = Field(None, min_length=8, max_length=200, repr=False)
    current_password: str | None = Field(
        None, min_length=1, max_length=200, repr=False,
        description="Your password now: needed to change `email` or `password`")


class User(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    role: str
    created_at: UtcDateTime


class Tokens(BaseModel):
    access_token: str
    token_type: str = Field(examples=["bearer"])
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class Category(BaseModel):
    id: int
    slug: str
    name: str


class Product(BaseModel):
    id: int
    sku: str
    name: str
    description: str
    price: Decimal = Field(description='Decimal as a string, e.g. "1299.99"')
    currency: str
    category: Category
    image_version: int | None = Field(
        None, description="Which uploaded image is current; null: the generated picture")
    image_url: str = Field(description="The product's image (changes with every upload)",
                           examples=["/api/v1/products/1/image?v=0"])
    thumbnail_url: str | None = Field(
        None, description="Its small version; null while the worker is still making it")


class ProductDetail(Product):
    stock: int | None = Field(description="Units available now (null if unknown)")
    stock_status: Literal["in_stock", "low", "out", "unknown"]


class NewProduct(BaseModel):
    """A product as an admin creates it (seed 004's shape)."""

    name: Text = Field(min_length=1, max_length=200, examples=["Premium Laptop"])
    description: Text = Field("", max_length=5000)
    price: Price
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    inventory: Whole = Field(0, ge=0, le=1_000_000, description="Units in stock to start with")
    category: Text | None = Field(None, max_length=64, description="Category slug")
    sku: Text | None = Field(None, min_length=1, max_length=32)
    name_ja: Text | None = Field(None, max_length=200, description="The name in Japanese")
    description_ja: Text | None = Field(None, max_length=5000,
                                        description="The description in Japanese")


class ProductChange(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=5000)
    price: Price
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    category: Text | None = Field(None, max_length=64)
    sku: Text | None = Field(None, min_length=1, max_length=32)
    name_ja: Text | None = Field(None, max_length=200, description="The name in Japanese")
    description_ja: Text | None = Field(None, max_length=5000,
                                        description="The description in Japanese")


class StockLevel(BaseModel):
    product_id: int
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    status: Literal["in_stock", "low", "out"]
    low_stock: bool


class StockPage(BaseModel):
    items: list[StockLevel]
    total: int
    limit: int
    offset: int


class StockChange(BaseModel):
    delta: Whole = Field(ge=-1_000_000, le=1_000_000, description="Units to add or remove")
    reason: Text = Field(min_length=1, max_length=200, examples=["restock from supplier"])


class CartLineIn(BaseModel):
    product_id: DbId
    quantity: Whole = Field(ge=1, le=99)


class QuantityChange(BaseModel):
    quantity: Whole = Field(ge=0, le=99, description="0 removes the item")


class CartLine(BaseModel):
    product_id: int
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


class Cart(BaseModel):
    items: list[CartLine]
    total: Decimal
    currency: str | None


class Address(BaseModel):
    street: Text = Field(min_length=1, max_length=200, examples=["123 Main St"])
    city: Text = Field(min_length=1, max_length=100, examples=["San Francisco"])
    state: Text = Field("", max_length=100, examples=["CA"])
    zip: Text = Field(min_length=1, max_length=20, examples=["94105"])
    country: str = Field(pattern=r"^[A-Z]{2}$", examples=["US"])


class OrderLineIn(BaseModel):
    product_id: DbId
    quantity: Whole = Field(ge=1, le=99)


class NewOrder(BaseModel):
    items: list[OrderLineIn] | None = Field(
        None, min_length=1, max_length=100, description="Omit to order what is in your cart")
    shipping_address: Address


class OrderLine(BaseModel):
    product_id: int
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


#: Why an order was cancelled, as an order and the admin's list of cancellations say it.
CancelReason = Annotated[str | None, Field(description="Why it was cancelled, in English")]
CancelReasonCode = Annotated[str | None, Field(
    description="The same as a code (payment-declined, payments-unavailable, "
    "payments-timed-out, reservation-expired); null for orders cancelled before codes "
    "were kept")]
DeclineReason = Annotated[str | None, Field(
    description="Payments' code for a declined payment (insufficient_funds, stolen_card, "
    "processing_error)")]


class Order(BaseModel):
    id: uuid.UUID
    number: str = Field(examples=["KS-000042"])
    status: Literal["pending_payment", "paid", "cancelled"]
    total: Decimal
    currency: str
    items: list[OrderLine]
    shipping_address: dict[str, str]
    payment_id: uuid.UUID | None
    cancel_reason: CancelReason
    cancel_reason_code: CancelReasonCode = None
    decline_reason: DeclineReason = None
    trace_id: str | None = Field(None, description="The trace of the request that placed it "
                                 "(when traced): open it in the explorer, /traces/{trace_id}")
    created_at: UtcDateTime


class OrderPage(BaseModel):
    items: list[Order]
    total: int
    limit: int
    offset: int


class CardDetails(BaseModel):
    card_number: str = Field(min_length=12, max_length=23, repr=False,
                             examples=["4111111111111111"])
    expiry_month: Whole = Field(ge=1, le=12, examples=[12])
    expiry_year: Whole = Field(ge=2000, le=2100, examples=[2030])
    cvv: str = Field(pattern=r"^[0-9]{3,4}$", repr=False, examples=["123"])


class WalletDetails(BaseModel):
    wallet_id: str = Field(min_length=3, max_length=64, repr=False)


class CardPayment(BaseModel):
    order_id: uuid.UUID
    payment_method: Literal["credit_card"]
    payment_details: CardDetails


class WalletPayment(BaseModel):
    order_id: uuid.UUID
    payment_method: Literal["wallet"]
    payment_details: WalletDetails


#: A payment: `payment_method` says which details it carries.
NewPayment = Annotated[CardPayment | WalletPayment, Field(discriminator="payment_method")]


class Payment(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    order_status: str
    status: Literal["succeeded"]
    amount: Decimal
    currency: str
    method: str
    brand: str | None
    last4: str | None


class Mail(BaseModel):
    sender: str
    recipients: list[str]
    subject: str
    body: str
    received_at: UtcDateTime


class Notification(BaseModel):
    """A text message or push notification the shop sent (simulated channels)."""

    id: uuid.UUID
    channel: Literal["sms", "push"]
    recipient: str = Field(description="A phone number (sms) or `user:<user id>` (push)")
    text: str
    event_id: str = Field(description="The event that caused it")
    created_at: UtcDateTime


class ReportSummary(BaseModel):
    """A report without its content: download it as `.csv` or `.json`."""

    id: uuid.UUID
    kind: Literal["inventory"]
    created_at: UtcDateTime
    row_count: int = Field(description="Products in the report")
    low_stock_count: int = Field(description="Of those, how many are low on stock")


class DeadLetter(BaseModel):
    sequence: int
    subject: str
    consumer: str | None
    error: str | None
    event_id: str | None
    payload: dict[str, Any] | None


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    limit: int
    offset: int


class CurrencyRevenue(BaseModel):
    """Money taken in one currency (different currencies are never added up)."""

    currency: str
    paid_orders: int
    revenue: Decimal


class CancelledOrder(BaseModel):
    id: uuid.UUID
    number: str
    total: Decimal
    currency: str
    cancel_reason: CancelReason
    cancel_reason_code: CancelReasonCode = None
    decline_reason: DeclineReason = None
    created_at: UtcDateTime


class SalesSummary(BaseModel):
    """Orders placed since a moment (default: midnight UTC today) by what became of
    them, the paid ones' revenue, and the newest cancellations."""

    since: UtcDateTime
    orders: int = Field(description="Orders placed since then, whatever became of them")
    paid: int
    pending_payment: int
    cancelled: int
    revenue: list[CurrencyRevenue]
    recent_cancellations: list[CancelledOrder]


class FaultFlag(BaseModel):
    """A fault flag: its current variant, the variants it has, and what it does."""

    name: str = Field(examples=["paymentFailure"])
    variant: str = Field(description="The current variant; `off` when the flag is off",
                         examples=["25%"])
    variants: list[str] = Field(examples=[["off", "10%", "25%", "50%", "75%", "100%"]])
    service: str = Field(description="Where the fault acts", examples=["payments"])
    description: str
    effect: str = Field(description="What the code really does while the flag is on")
    look_for: str = Field(description="Where it shows in the explorer")


class FlagChange(BaseModel):
    variant: str = Field(min_length=1, max_length=32, examples=["25%"])


# --- the performance lab ---------------------------------------------------------------

@dataclass(frozen=True)
class LabOperation:
    """A lab operation as the gateway offers it: a scenario, as problem or fixed twin."""

    scenario: str
    fixed: bool

    @property
    def key(self) -> str:
        """`n-plus-one`, `n-plus-one-fixed`: names the page's result boxes."""
        return self.scenario + ("-fixed" if self.fixed else "")

    @property
    def name(self) -> str:
        """The seeds' operation name, `operation.type`: `n_plus_one`, `n_plus_one_fixed`."""
        return self.key.replace("-", "_")

    @property
    def suffix(self) -> str:
        return f"/{self.scenario}" + ("/fixed" if self.fixed else "")


SCENARIOS: Final = ("n-plus-one", "slow-query", "database-error")
OPERATIONS: Final = tuple(LabOperation(scenario, fixed) for scenario in SCENARIOS
                          for fixed in (False, True))


class LabParameters(BaseModel):
    """What to run the operation on; every field has a default. (N+1 has no variants.)"""

    model_config = ConfigDict(extra="forbid")

    limit: Whole = Field(10, ge=1, le=100, description="How many products (the N of N+1)")
    category: str | None = Field(None, min_length=1, max_length=64,
                                 pattern=r"^[a-z0-9][a-z0-9-]*$",
                                 description="A category's slug", examples=["telescopes"])
    product_id: DbId | None = Field(None, description="Database error, `constraint`: the "
                                    "product to save as a favourite")


class SlowQueryParameters(LabParameters):
    variant: Literal["sleep", "cartesian"] | None = Field(
        None, description="`sleep` (3 to 5 s of pg_sleep, the default) or `cartesian` "
        "(in `category`, or the first category)")


class DatabaseErrorParameters(LabParameters):
    variant: Literal["missing-table", "constraint"] | None = Field(
        None, description="`missing-table` (the default) or `constraint`")


#: Each scenario's parameters: its own variants, so the contract names them.
LAB_PARAMETERS: Final[dict[str, type[LabParameters]]] = {
    "n-plus-one": LabParameters,
    "slow-query": SlowQueryParameters,
    "database-error": DatabaseErrorParameters,
}


class LabRun(BaseModel):
    """The seeds' request, less what the gateway knows: the user comes from the token."""

    model_config = ConfigDict(extra="forbid")

    user_id: Text | None = Field(None, max_length=64,
                                 description="Leave it out: the gateway fills it in. If "
                                 "sent, it must be your own")
    parameters: LabParameters = Field(default_factory=LabParameters)


def lab_run_model(operation: LabOperation) -> type[LabRun]:
    """The request `operation`'s route takes: `LabRun` with its scenario's parameters."""
    parameters = LAB_PARAMETERS[operation.scenario]
    name = "".join(part.capitalize() for part in operation.name.split("_")) + "Run"
    model: type[LabRun] = create_model(
        name, __base__=LabRun, parameters=(parameters, Field(default_factory=parameters)))
    return model


class LabData(BaseModel):
    results: list[dict[str, Any]]
    execution_time: float = Field(description="Seconds the operation took in the lab")
    query_count: int = Field(description="Statements the lab sent to PostgreSQL")


class LabError(BaseModel):
    type: str = Field(examples=["UndefinedTableError"])
    sqlstate: str | None = Field(examples=["42P01"])
    message: str


class LabResult(BaseModel):
    """The seeds' answer: `status`, `data`, `user_id`, `trace_id`, and what ran."""

    status: Literal["success", "error"]
    operation: str = Field(examples=["n_plus_one"])
    fixed: bool
    variant: str | None
    data: LabData
    error: LabError | None = None
    user_id: str
    trace_id: str | None = Field(description="Open it in the explorer: /traces/{trace_id}")
