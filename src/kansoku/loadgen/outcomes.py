"""The synthetic monitors' journeys by name, and the ways one run of a journey ends.

A leaf: it imports nothing from `kansoku.loadgen`, so the monitors (`synthetics.py`),
the browser journey (`browser.py`) and the settings (`settings.py`) all import it at the
top. (The load generator's journeys, which Locust runs, are `journeys.py` and
`steps.py`.)
"""

from __future__ import annotations

from typing import Final

#: The journeys, in the order a round runs them.
JOURNEY_NAMES: Final = ("browse", "checkout", "storefront")

#: A run's outcome, as the `kansoku.synthetic.outcome` attribute and `kansoku synth` say.
SUCCESS: Final = "success"
FAILURE: Final = "failure"
SKIPPED: Final = "skipped"


class JourneyFailed(Exception):
    """A step found the shop not as it should be; the message says what it saw."""


class JourneySkipped(Exception):
    """The journey cannot run here (no browser): reported as skipped, not failed."""
