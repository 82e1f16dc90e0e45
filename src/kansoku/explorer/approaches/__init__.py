"""The Approaches page: the instrumentation approaches (OpenTelemetry, AWS X-Ray, New
Relic, none) as measured side by side, which of them made the spans here, and the
latest checkout each traced (docs/approaches.md)."""
