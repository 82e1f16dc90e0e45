"""Generated traffic: the load generator (`kansoku load`) and the synthetic monitors
(`kansoku synth`, and the scheduled runner in `synthetics.py`).

Both drive the shop through the gateway's public surface — its pages and its REST API —
and mark what they send with the W3C baggage entry `kansoku.synthetic` (`load` or
`synthetic`), which every service copies onto its spans, so generated traffic can be
told from real customers in the explorer.

Locust, which the load generator runs on, patches the standard library with gevent as
soon as it is imported: only `journeys.py` and `runner.py` import it, and only the child
process `kansoku load` starts runs them. Nothing else here imports Locust.
"""
