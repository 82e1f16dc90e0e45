"""Real-user monitoring: the intake for what the pages' script measures in the browser.

- `schemas.py` — the wire format a page's script posts, checked strictly;
- `pipeline.py` — forwarding it over OTLP as service `storefront-web`;
- `routes.py` — `POST /rum`, with its size and rate limits.

docs/rum.md describes the wire format and where to look at the data.
"""
