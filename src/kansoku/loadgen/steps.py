"""The load generator's journeys by name: their steps and weights.

Here rather than in `journeys.py` because the `kansoku` command lists them too, and
`journeys.py` imports Locust (which patches the standard library with gevent).
"""

from __future__ import annotations

from typing import Final

#: Every journey and its steps, in the order the summary lists them. A step's name in
#: Locust's statistics is `journey: step` (`step_name`).
JOURNEY_STEPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("account", ("register",)),
    ("browse", ("home page", "product list page", "categories")),
    ("search", ("search",)),
    ("view product", ("product",)),
    ("add to cart", ("add to cart", "cart")),
    ("checkout", ("product", "cart", "remove from cart", "add to cart", "place order",
                  "pay")),
    ("login", ("log in",)),
    ("admin restock", ("admin login", "low stock", "restock")),
)

#: How often a shopper picks each journey, relative to the others (`account` is not
#: picked: each shopper registers once, when it starts).
WEIGHTS: Final[dict[str, int]] = {
    "browse": 10, "search": 5, "view product": 8, "add to cart": 3, "checkout": 2,
    "login": 1, "admin restock": 1}


def step_name(journey: str, step: str) -> str:
    return f"{journey}: {step}"


def split_step(name: str) -> tuple[str, str]:
    """`journey: step` back into its parts (a name without a journey is its own)."""
    journey, _, step = name.partition(": ")
    return (journey, step) if step else (name, name)


#: Every step's name, in order.
STEP_NAMES: Final = tuple(step_name(journey, step)
                          for journey, steps in JOURNEY_STEPS for step in steps)
