"""inventory: stock levels and reservations."""

SERVICE = "inventory"
