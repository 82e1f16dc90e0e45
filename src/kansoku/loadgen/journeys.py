"""The load generator's journeys: a Locust user that shops the way customers do.

This is a locustfile (`python -m locust -f` accepts it too), run by `runner.py` in the
child process `kansoku load` starts; importing it patches the standard library with
gevent, so the `kansoku` command itself never imports it.

Each simulated shopper registers an account of its own, then walks every journey once
(so that even a short run measures every step), then picks journeys by weight, thinking
1 to 3 s between them:

| journey | weight | steps |
| --- | --- | --- |
| browse | 10 | home page, product list page, categories (API) |
| search | 5 | search (API) |
| view product | 8 | product (API: with its stock) |
| account | once | register (API), when the shopper starts |
| add to cart | 3 | add to cart, cart (API) |
| checkout | 2 | product, cart, remove from cart (what else it holds), add to cart, |
|  |  | place order (with an Idempotency-Key), pay (the test card that pays) |
| login | 1 | log in (API) |
| admin restock | 1 | admin login (when needed), low stock, restock (API, as the demo admin) |

Every request carries the baggage `kansoku.synthetic=load`. A step's name in Locust's
statistics is `journey: step`; `steps.JOURNEY_STEPS` lists them all, in order.
"""

from __future__ import annotations

# Locust first: it patches the standard library with gevent on import, and what is
# imported before the patch (sockets, ssl) would not cooperate with its greenlets.
# isort: off
import locust
from locust import HttpUser, between, task
from locust.env import Environment
# isort: on

import random
import time
import uuid
from typing import Any, ClassVar, Final

import requests

from kansoku.loadgen import shop
from kansoku.loadgen.steps import WEIGHTS, step_name

#: Log in again before the 15-minute access token runs out.
TOKEN_LIFETIME_SECONDS: Final = 10 * 60

#: How many units an admin restock adds.
RESTOCK_UNITS: Final = 20


class Catalog:
    """The product ids and category slugs, read once when the run starts, so that
    shoppers pick products that exist."""

    product_ids: ClassVar[list[int]] = []
    categories: ClassVar[list[str]] = []

    @classmethod
    def load(cls, host: str) -> None:
        headers = {"baggage": shop.baggage_header(shop.LOAD)}
        ids: list[int] = []
        offset = 0
        while True:
            page = requests.get(f"{host}{shop.API}/products", headers=headers, timeout=30,
                                params={"limit": 100, "offset": offset})
            page.raise_for_status()
            body = page.json()
            ids.extend(item["id"] for item in body["items"])
            offset += len(body["items"])
            if not body["items"] or offset >= body["total"] or offset >= 1000:
                break
        answer = requests.get(f"{host}{shop.API}/categories", headers=headers, timeout=30)
        answer.raise_for_status()
        cls.product_ids = ids
        cls.categories = [category["slug"] for category in answer.json()]
        if not ids:
            raise RuntimeError(f"the shop at {host} has no products to buy")


@locust.events.test_start.add_listener  # type: ignore[untyped-decorator]
def _read_catalog(environment: Environment, **_: Any) -> None:
    if not Catalog.product_ids:  # runner.py reads it before starting, to report errors
        Catalog.load(environment.host or "")


class Shopper(HttpUser):
    """A customer of the shop (and now and then its admin), driven by weights."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.client.headers["baggage"] = shop.baggage_header(shop.LOAD)
        self.token: str | None = None
        self.token_at = 0.0
        self.admin_token: str | None = None
        self.admin_token_at = 0.0
        self.rng = random.Random()  # noqa: S311  (which product, not a secret)
        account = shop.new_account(shop.LOAD)
        self.email, self.password = account["email"], account["password"]
        self.client.post(f"{shop.API}/users", json=account,
                         name=step_name("account", "register"))
        # The tour: every journey once, so that even a short run measures every step.
        for journey in WEIGHTS:
            JOURNEYS[journey](self)

    # --- helpers ----------------------------------------------------------------------

    def _customer(self) -> dict[str, str]:
        """The shopper's Authorization header, logging in when it has none or it is
        about to expire."""
        if self.token is None or time.monotonic() - self.token_at > TOKEN_LIFETIME_SECONDS:
            self.log_in()
        return {"Authorization": f"Bearer {self.token}"}

    def _json(self, response: Any) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _product_id(self) -> int:
        return self.rng.choice(Catalog.product_ids)

    # --- journeys ---------------------------------------------------------------------

    @task(WEIGHTS["browse"])
    def browse(self) -> None:
        self.client.get("/", name=step_name("browse", "home page"),
                        headers={"Accept": "text/html"})
        params: dict[str, Any] = {"page": self.rng.randint(1, 5)}
        if Catalog.categories and self.rng.random() < 0.5:
            params = {"category": self.rng.choice(Catalog.categories)}
        self.client.get("/products", params=params, headers={"Accept": "text/html"},
                        name=step_name("browse", "product list page"))
        self.client.get(f"{shop.API}/categories", name=step_name("browse", "categories"))

    @task(WEIGHTS["search"])
    def search(self) -> None:
        self.client.get(f"{shop.API}/products",
                        params={"q": shop.search_word(self.rng), "limit": 20},
                        name=step_name("search", "search"))

    @task(WEIGHTS["view product"])
    def view_product(self) -> None:
        self.client.get(f"{shop.API}/products/{self._product_id()}",
                        name=step_name("view product", "product"))

    @task(WEIGHTS["add to cart"])
    def add_to_cart(self) -> None:
        headers = self._customer()
        self.client.post(f"{shop.API}/cart/items", headers=headers,
                         json={"product_id": self._product_id(), "quantity": 1},
                         name=step_name("add to cart", "add to cart"))
        self.client.get(f"{shop.API}/cart", headers=headers,
                        name=step_name("add to cart", "cart"))

    @task(WEIGHTS["checkout"])
    def checkout(self) -> None:
        """Buy one unit of a product with plenty in stock: the cart is emptied of what
        else it holds (what `add to cart` left there may be sold out), the product is
        added, the order placed with an Idempotency-Key and paid with the test card
        that pays."""
        headers = self._customer()
        product_id = None
        for _ in range(5):
            candidate = self._product_id()
            answer = self.client.get(f"{shop.API}/products/{candidate}",
                                     name=step_name("checkout", "product"))
            detail = self._json(answer)
            if answer.ok and detail and detail.get("stock_status") == "in_stock":
                product_id = candidate
                break
        if product_id is None:
            return  # nothing plentiful met: next time
        cart = self._json(self.client.get(f"{shop.API}/cart", headers=headers,
                                          name=step_name("checkout", "cart")))
        for line in (cart or {}).get("items", []):
            if line["product_id"] != product_id:
                self.client.delete(f"{shop.API}/cart/items/{line['product_id']}",
                                   headers=headers,
                                   name=step_name("checkout", "remove from cart"))
        added = self.client.post(f"{shop.API}/cart/items", headers=headers,
                                 json={"product_id": product_id, "quantity": 1},
                                 name=step_name("checkout", "add to cart"))
        if not added.ok:
            return
        order = self.client.post(
            f"{shop.API}/orders", json={"shipping_address": shop.SHIPPING_ADDRESS},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            name=step_name("checkout", "place order"))
        body = self._json(order)
        if not order.ok or not body:
            return
        self.client.post(f"{shop.API}/payments", headers=headers,
                         name=step_name("checkout", "pay"),
                         json={"order_id": body["id"], "payment_method": "credit_card",
                               "payment_details": shop.PAYING_CARD})

    @task(WEIGHTS["login"])
    def log_in(self) -> None:
        answer = self.client.post(f"{shop.API}/auth/login", name=step_name("login", "log in"),
                                  json={"email": self.email, "password": self.password})
        tokens = self._json(answer)
        if answer.ok and tokens:
            self.token, self.token_at = tokens["access_token"], time.monotonic()

    @task(WEIGHTS["admin restock"])
    def admin_restock(self) -> None:
        """As the demo admin: list the products low on stock and restock one."""
        if (self.admin_token is None
                or time.monotonic() - self.admin_token_at > TOKEN_LIFETIME_SECONDS):
            email, password = shop.demo_admin()
            answer = self.client.post(f"{shop.API}/auth/login",
                                      json={"email": email, "password": password},
                                      name=step_name("admin restock", "admin login"))
            tokens = self._json(answer)
            if not answer.ok or not tokens:
                return
            self.admin_token, self.admin_token_at = tokens["access_token"], time.monotonic()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        low = self._json(self.client.get(
            f"{shop.API}/inventory", params={"low_only": "true", "limit": 50},
            headers=headers, name=step_name("admin restock", "low stock")))
        items = (low or {}).get("items") or []
        product_id = (self.rng.choice(items)["product_id"] if items
                      else self._product_id())
        self.client.post(f"{shop.API}/inventory/{product_id}/adjust", headers=headers,
                         json={"delta": RESTOCK_UNITS, "reason": "restock (kansoku load)"},
                         name=step_name("admin restock", "restock"))


#: Journey name -> what a shopper does for it (the tour at the start runs them in turn).
JOURNEYS: Final = {
    "browse": Shopper.browse, "search": Shopper.search, "view product": Shopper.view_product,
    "add to cart": Shopper.add_to_cart, "checkout": Shopper.checkout,
    "login": Shopper.log_in, "admin restock": Shopper.admin_restock}
