"""map: the service map — services, databases and caches as nodes, calls as edges — and
Jaeger's `/api/dependencies`."""
