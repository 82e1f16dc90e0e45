"""cart: shopping carts, kept in Valkey."""

SERVICE = "cart"
