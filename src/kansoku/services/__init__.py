"""The shop's services: one package each, with the same file names in every one.

app.py (create_app), api.py (routes), service.py (logic), store.py (all SQL),
schemas.py (request/response models), models.py (tables), settings.py (one Settings).
A service never imports another service: they talk over HTTP and NATS only.
"""
