"""catalog: products and categories."""

SERVICE = "catalog"
