"""Where a stack keeps its files: its data directory and what is in it, found with the
standard library alone.

`StackSettings` (stack/settings.py) names the same places — its properties are these —
but reading it imports pydantic-settings, about 0.13 s of CPU: more than the goal for
the whole of `kansoku status`, which needs nothing but the data directory. So `status`
finds its data directory here, as the settings would (`--data-dir`, else
KANSOKU_DATA_DIR, else ./.kansoku).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The variable that names the data directory, and the directory without it.
DATA_DIR_VARIABLE: Final = "KANSOKU_DATA_DIR"
DEFAULT_DATA_DIR: Final = Path(".kansoku")


@dataclass(frozen=True)
class StackPaths:
    """A stack's data directory (absolute) and the files it keeps there."""

    data_dir: Path

    @classmethod
    def chosen(cls, data_dir: Path | None, environ: Mapping[str, str] = os.environ
               ) -> StackPaths:
        """The data directory the command line names (`--data-dir`), else the
        environment, else ./.kansoku. The variable's name is matched regardless of case,
        as the settings match it."""
        if data_dir is None:
            value = environ.get(DATA_DIR_VARIABLE)
            if value is None:
                value = next((found for name, found in environ.items()
                              if name.upper() == DATA_DIR_VARIABLE), None)
            data_dir = DEFAULT_DATA_DIR if value is None else Path(value)
        return cls(absolute(data_dir))

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"


def absolute(data_dir: Path) -> Path:
    """`data_dir` with `~` expanded, made absolute (not resolved: a link stays the name
    the user gave)."""
    return data_dir.expanduser().absolute()
