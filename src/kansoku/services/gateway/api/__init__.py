"""The public REST API under `/api/v1`, documented at `/api/docs`.

Each module is one part of it — `accounts`, `catalog`, `shopping` (cart, orders,
payments), `operations` (the admin's), `lab` — and each route is a thin translation: it
takes the request's model, calls a typed client (`clients.py`) or the shop's read model
(`shop.py`) for the caller, and returns the data, which FastAPI checks against the
route's response model (`schemas.py`). A service's "no" comes back as that service's
problem, unchanged (`clients.Refused`); a service that is away as a 503 naming it.
`app.py` mounts the parts under `/api/v1`, each request counted against the rate
limits.
"""
