"""The storefront's pages (`routes.py`): browsing, the cart, checkout, orders and accounts."""
