"""The words fault flags are spoken in: the variant every flag starts in, the kinds a
service evaluates a flag as, and the variable naming the flags file.

Apart from `kit/flags.py` (the evaluation, which needs OpenTelemetry and FastAPI) so that
what only names flags — the shop's catalogue, the flags file, the `kansoku` command —
imports no web framework.
"""

from __future__ import annotations

import enum

#: The variant every flag has, and starts in: a flag at `off` is not active.
OFF = "off"

#: The variable that names the flags file to every service (`ServiceSettings.flags_file`).
FLAGS_FILE_VARIABLE = "KANSOKU_FLAGS_FILE"

#: The value a flag's variant gives the code: True for a switch, else a number.
FlagValue = bool | float


class FlagKind(enum.Enum):
    """How a service evaluates one flag, and what its value means."""

    #: On or off: evaluated as a boolean.
    SWITCH = "switch"
    #: A number that acts on every request (seconds to wait, a factor).
    AMOUNT = "amount"
    #: A number from 0 to 1: the share of requests the fault acts on.
    SHARE = "share"
