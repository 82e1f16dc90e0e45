"""The gateway's web pages: the storefront, the admin's back office and the lab's page,
server-rendered HTML that works without JavaScript.

- `sessions.py` — web sessions in Valkey, and the session cookie;
- `auth.py` — the request's session, logging in and out, who may see a page, CSRF;
- `rendering.py` — the templates, what every page gets, its security headers;
- `problem_pages.py` — problems shown to a browser as pages;
- `layers.py` — installs the session cookie, the problem pages and the login redirect;
- `forms.py` — checking what a form sent, in words next to each field;
- `storefront/`, `admin/`, `lab/` — the pages' routes.

The pages read the shop through the same read model and clients as the public API
(`shop.py`, `clients.py`), for the session's user.
"""
