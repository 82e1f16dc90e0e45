"""Chaos experiments: disturb the running shop on purpose and watch it cope.

- `experiment.py`: the YAML format (hypothesis, method, rollback), checked with clear
  errors; `experiments/` holds the shipped ones.
- `probes.py`: the questions the hypothesis asks the stack (health, a checkout, the
  explorer's error rate and latency).
- `actions.py`: what a method does (fault flags; stop, start, kill, pause a component).
- `runner.py`: before → method (probing meanwhile) → rollback → recovery, and the report.
- `report.py`: the report in words.
- `scheduler.py`: game days — random fault flags on and off, reproducible from a seed.

`kansoku chaos` (commands/chaos.py) is the way in; docs/chaos.md the guide.
"""
