"""orders: the checkout saga, orders and the transactional outbox."""

SERVICE = "orders"
