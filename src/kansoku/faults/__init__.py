"""kansoku's fault flags: switches that make a part of the shop really fail, slow down or
leak, on purpose (see docs/faults.md).

- `catalogue.py`: every flag — its variants, the service that acts on it, what it does and
  what to look for (`FLAGS`) — and how a service evaluates each (`FLAG_KINDS`).
- `flagfile.py`: the flags file every service reads, switched by `kansoku flags`, the
  gateway's admin API and page, chaos experiments and the supervisor.
- `effects.py`: the effects that need more than a check on a request (an address that
  refuses connections, an engine that loses its database).

How a service sees the flags is not here but in the kit (`kansoku.kit.flags`:
`FaultFlags`, `ActiveFault`, the `Faults` dependency), which knows no flag by name: each
service's `create_app` gives its `FaultFlags` the catalogue's `FLAG_KINDS`. Import the
modules (`from kansoku.faults import catalogue, flagfile`); this package re-exports nothing.
"""
