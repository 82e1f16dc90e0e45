"""The flags file: reading and switching the fault flags every service of a stack obeys.

One document in flagd's JSON format holds the current variant of every flag in
`catalogue.FLAGS`. Where it lives is a `FlagStore`:

- `FlagFile`: a file (`<data dir>/flags.json`, named to every service by
  `KANSOKU_FLAGS_FILE`) — under `kansoku up` and in compose, where the services share a
  volume. Writes go to a temporary file that is renamed over the old one, under a lock,
  so a reader never sees half a file and two writers never lose each other's change.
- `faults.configmap.FlagConfigMap`: a Kubernetes ConfigMap (`KANSOKU_FLAGS_CONFIGMAP`),
  written through the Kubernetes API and mounted into every pod as that same file.

`kansoku flags`, the gateway's admin API and `/admin/faults` page write through a store
(`configmap.flag_store` picks it); chaos experiments and the supervisor use the file
functions below; processes outside the services that look now and then (the load
generator) use `current_variant`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from kansoku.faults.catalogue import FLAGS, FlagDefinition, canonical_variant, flag_definition
from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE, OFF

logger = logging.getLogger(__name__)

#: flagd's schema, named in the file so editors can check it.
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"


class FlagFileError(ValueError):
    """The flags cannot be read or written; the message names where and the fix."""


class FlagStore(Protocol):
    """Where the flags document lives, for those who switch flags."""

    #: Where, in words, for messages: a path, or `configmap kansoku/kansoku-flags`.
    location: str

    def read_variants(self) -> dict[str, str]: ...

    def set_variant(self, name: str, variant: str) -> tuple[str, str]: ...

    def reset(self) -> None: ...


class FlagFile:
    """The flags in a file every service reads (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def read_variants(self) -> dict[str, str]:
        return read_variants(self.path)

    def set_variant(self, name: str, variant: str) -> tuple[str, str]:
        return set_variant(self.path, name, variant)

    def reset(self) -> None:
        reset(self.path)


def default_path() -> Path | None:
    """The flags file named by `KANSOKU_FLAGS_FILE`, if set."""
    value = os.environ.get(FLAGS_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


def _flag_document(flag: FlagDefinition, variant: str) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": dict(flag.variants), "defaultVariant": variant}


def _read_document(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FlagFileError(f"cannot read the flags file {path}: {exc.strerror}") from exc
    return parse_document(text, f"the flags file {path}")


def parse_document(text: str, where: str) -> dict[str, Any]:
    """The flags document in `text`; `FlagFileError` naming `where` if it is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagFileError(f"{where} is not valid JSON (line {exc.lineno}): "
                            "fix it, or run `kansoku flags reset`") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags", {}), dict):
        raise FlagFileError(f"{where} is not in flagd's format (an object "
                            "with \"flags\"): fix it, or run `kansoku flags reset`")
    return document


def read_variants(path: Path) -> dict[str, str]:
    """The current variant of every flag (in `FLAGS` order). A missing file, a flag
    missing from it or disabled in it, all count as `off`."""
    return variants_in(_read_document(path) or {})


def variants_in(document: Mapping[str, Any]) -> dict[str, str]:
    """The variant of every flag in `FLAGS` a flags document gives (off when missing or
    disabled)."""
    found: dict[str, str] = {}
    for name in FLAGS:
        entry = document.get("flags", {}).get(name)
        variant = entry.get("defaultVariant") if isinstance(entry, dict) else None
        enabled = isinstance(entry, dict) and entry.get("state", "ENABLED") == "ENABLED"
        found[name] = str(variant) if enabled and variant is not None else OFF
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the file: read-modify-write by the CLI and the
    admin page at the same moment must not lose either change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def document_text(previous: Mapping[str, Any], changes: Mapping[str, str] | None) -> str:
    """The flags document after `changes` (flag -> variant) to `previous`, or with every
    flag off when `changes` is None, as text. Flags this module does not know stay."""
    others = {key: value for key, value in previous.get("flags", {}).items()
              if key not in FLAGS}
    variants = variants_in(previous) if changes is not None else {}
    variants.update(changes or {})
    flags = {**others, **{name: _flag_document(flag, variants.get(name, OFF))
                          for name, flag in FLAGS.items()}}
    return json.dumps({"$schema": FLAGD_SCHEMA, "flags": flags}, indent=2) + "\n"


def _write_document(path: Path, text: str) -> None:
    """Write the document atomically: a temporary file in the same folder, renamed over
    the old."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        # Readable as a file made with open() would be: a stack's umask keeps it private.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o644 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def set_variant(path: Path, name: str, variant: str) -> tuple[str, str]:
    """Switch flag `name` to `variant` (names and variants ignore case); returns them as
    the flag spells them. Raises `FlagError` naming the valid ones."""
    flag = flag_definition(name)
    chosen = canonical_variant(flag, variant)
    with _locked(path):
        try:
            document = _read_document(path) or {}
        except FlagFileError:
            document = {}  # a broken file is replaced: setting a flag repairs it
        _write_document(path, document_text(document, {flag.name: chosen}))
    logger.info("fault flag %s set to %s", flag.name, chosen,
                extra={"flag": flag.name, "variant": chosen})
    return flag.name, chosen


def reset(path: Path) -> None:
    """Every flag off (the file is created if missing; flags it does not know stay)."""
    with _locked(path):
        try:
            document = _read_document(path) or {}
        except FlagFileError:
            document = {}
        _write_document(path, document_text(document, None))


def current_variant(name: str, path: Path | None = None) -> str:
    """The variant flag `name` is at now, read straight from the file (`path`, or
    `KANSOKU_FLAGS_FILE`): for processes outside the services, like the load generator,
    that look now and then. Off when there is no file."""
    flag = flag_definition(name)
    path = path or default_path()
    if path is None:
        return OFF
    try:
        return read_variants(path)[flag.name]
    except FlagFileError:
        return OFF
