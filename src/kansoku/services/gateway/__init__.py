"""gateway: the storefront and admin pages and the public API, in front of the services."""

SERVICE = "gateway"
