"""explorer: where telemetry goes in embedded mode, and where a learner looks.

It receives OTLP into an embedded DuckDB store (`store`) and answers questions about it
through a JSON API, Jaeger's query API and pages. The code is split by feature — `ingest`,
`traces`, `map`, `metrics`, `logs`, `rum`, `problems`, `alerts`, `slos` — each with its
routes, queries and models; `common` holds what several share, and `app` wires them
(docs/architecture.md, "The explorer").
"""

SERVICE = "explorer"
