"""traces: Jaeger's query API (services, operations, a search, a trace by id) and a trace
with its log records. `queries` finds and bounds the spans, `jaeger` shapes them as
Jaeger answers, `models` holds the search and the answers."""
