"""Measurements that print figures (`python benchmarks/NAME.py`); a package only so that
one benchmark can use another's workload (startup.py drives checkout.py's customers)."""
