"""problems: problem detection. `detector` runs the rules on the traces as they arrive
(and against each operation's baseline), `queries` reads their spans and keeps what
they find, `models` names the kinds, `routes` serves `/api/problems` (docs/problems.md)."""
