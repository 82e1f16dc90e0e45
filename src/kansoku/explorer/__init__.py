"""explorer: where telemetry goes in embedded mode, and where a learner looks.

For now a receiver: it accepts OTLP/HTTP (protobuf) on the standard port, keeps recent
spans in memory and answers a few questions about them. The explorer issue turns it
into the full store, UI and Jaeger-compatible API.
"""

SERVICE = "explorer"
