"""payments: a simulated card processor."""

SERVICE = "payments"
