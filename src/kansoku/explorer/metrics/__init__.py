"""metrics: RED (rate, errors, duration) per service and route from the spans, the
metrics that arrived and their series per step, the shop's funnel."""
