"""Incident drills: break the shop on purpose, let a learner investigate with the
explorer, check their answer against the traces, check their fix, and score it
(`kansoku drill …`, docs/drills.md).

- `model.py`: a drill as written in `catalogue/*.yaml` — its question in Japanese and
  English, its fault candidates (one picked by a seed), its load and its hints — and
  the right answer, derived from the fault catalogue (`Drill.truth`).
- `evidence.py`: whether an answer's trace, read through the explorer's HTTP API,
  shows the fault.
- `scoring.py`: one attempt at a drill — what happened when — and its score.
- `stack.py`: what a drill does to the running stack: switch its fault on and off, run
  its load, probe whether the shop has recovered (`kansoku.chaos.probes`).
- `debrief.py`: kansoku's own alerts during a drill (the explorer's alert history), lined
  up with the learner's answers.
- `solver.py`: finds a drill's answer through the explorer's API alone — the tests'
  proof that every drill can be solved.
- `store.py`: every SQL statement of the drills' history (schema `drills`, migrated by
  `kansoku migrate` from `migrations/`).

Import the modules (`from kansoku.drills import model`); this package re-exports nothing.
"""
