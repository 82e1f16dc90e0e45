"""What the `kansoku` command loads to start: every command module, and no web framework,
database toolkit, HTTP client or telemetry SDK — those belong to the commands that use
them (imported inside them), so `kansoku --help` and `kansoku status` start at once
(docs/performance.md has the times; this checks the structure, not a time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Packages the CLI must not import merely to start: each costs tens of milliseconds to
#: hundreds, and `kansoku --help` needs none of them (`status` only the settings).
HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "httpx", "opentelemetry", "yaml",
         "uvicorn", "asyncpg", "redis", "duckdb", "psutil", "pydantic_settings", "kansoku.chaos",
         "kansoku.services", "kansoku.explorer", "kansoku.kit.flags")


def _loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    printed = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    return set(printed)


@pytest.mark.parametrize("code", [
    "import kansoku.cli",
    # What `kansoku --help` runs, its output thrown away (it exits when done).
    "import contextlib, io, kansoku.cli\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
    "    kansoku.cli.app(['--help'])",
])
def test_the_command_starts_without_the_service_machinery(code: str) -> None:
    loaded = _loaded_by(code)
    assert "kansoku.commands.stack" in loaded  # it did load the commands
    assert not sorted(name for name in loaded if name.split(".")[0] in HEAVY
                      or name.startswith(HEAVY))
