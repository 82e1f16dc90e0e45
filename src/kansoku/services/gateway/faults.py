"""The gateway and the fault flags: the two faults that act in the gateway itself
(`gatewayCpuHog`, `imageSlowLoad`), and switching flags from the admin API and pages.

The gateway writes the flags file named by `KANSOKU_FLAGS_FILE` (the one every service
reads; see kansoku/faults/flagfile.py) directly, as `kansoku flags` does: each service
sees a change within about half a second. In Kubernetes it writes the flags ConfigMap
(`KANSOKU_FLAGS_CONFIGMAP`) through the Kubernetes API instead, with its service
account; the pods see the change once the kubelet has refreshed the mounted file.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from kansoku.faults import catalogue, configmap, flagfile
from kansoku.kit.app import UNOBSERVED_PATHS
from kansoku.kit.errors import Problem
from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE, OFF
from kansoku.kit.flags import FaultFlags
from kansoku.kit.i18n import _
from kansoku.services.gateway.api.schemas import FaultFlag
from kansoku.services.gateway.settings import Settings

#: CPU time gatewayCpuHog burns on each request, in seconds.
CPU_HOG_SECONDS = 0.05
_CPU_WORK = b"kansoku" * 1024


def burn_cpu(seconds: float) -> int:
    """Hash in a loop until this thread has used `seconds` of CPU time; returns the
    rounds. (CPU time, not wall time: a busy machine does not shorten the burn.)"""
    deadline = time.thread_time() + seconds
    rounds = 0
    while time.thread_time() < deadline:
        hashlib.sha256(_CPU_WORK).digest()
        rounds += 1
    return rounds


class CpuHog:
    """While gatewayCpuHog is on, every traced request first burns `CPU_HOG_SECONDS` of
    CPU on the event loop, in a `cpu-intensive work` span inside the request's span, as
    a hot loop in a request handler would. Off, it costs one dictionary lookup."""

    def __init__(self, app: ASGIApp, faults: FaultFlags) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (fault := self.faults.active("gatewayCpuHog")) \
                and not str(scope["path"]).startswith(UNOBSERVED_PATHS):
            with fault.span("cpu-intensive work") as span:
                span.set_attribute("kansoku.cpu_hog.rounds", burn_cpu(CPU_HOG_SECONDS))
        await self.app(scope, receive, send)


async def deliver_image_slowly(faults: FaultFlags) -> None:
    """With imageSlowLoad on, wait its variant's seconds before an image is sent."""
    if fault := faults.active("imageSlowLoad"):
        await fault.sleep(float(fault.value), "slow image delivery")


# --- Switching the flags (admin API and pages) ------------------------------------------

def _store(settings: Settings) -> flagfile.FlagStore | None:
    return configmap.flag_store(file=settings.flags_file, configmap=settings.flags_configmap)


def flag_store(request: Request) -> flagfile.FlagStore:
    """Where the flags are switched (the flags file, or in Kubernetes the ConfigMap), or
    a 503 problem if the gateway was not told of either."""
    try:
        store = _store(request.app.state.settings)
    except flagfile.FlagFileError as exc:
        raise Problem(503, "flags-unreadable", str(exc)) from exc
    if store is None:
        raise Problem(503, "flags-unavailable", _no_flags())
    return store


def _no_flags() -> str:
    """Why the flags cannot be switched here, in the reader's language."""
    return _("The gateway does not know the fault flags: set {file_variable} (`kansoku up` "
             "does) or, in Kubernetes, {configmap_variable}.").format(
                 file_variable=FLAGS_FILE_VARIABLE,
                 configmap_variable=configmap.FLAGS_CONFIGMAP_VARIABLE)


def _problem(exc: catalogue.FlagError | flagfile.FlagFileError, name: str) -> Problem:
    if isinstance(exc, flagfile.FlagFileError):
        return Problem(503, "flags-unreadable", str(exc))
    if name not in catalogue.FLAGS and not any(n.lower() == name.lower() for n in catalogue.FLAGS):
        return Problem(404, "flag-not-found", str(exc), flags=list(catalogue.FLAGS))
    flag = catalogue.flag_definition(name)
    return Problem(422, "unknown-variant", str(exc), field="variant",
                   variants=flag.variant_names)


def describe(variants: dict[str, str]) -> list[FaultFlag]:
    """Every flag with its current variant, for the API and the page."""
    return [FaultFlag(name=flag.name, variant=variants.get(flag.name, OFF),
                      variants=flag.variant_names, service=flag.service,
                      description=flag.description, effect=flag.effect,
                      look_for=flag.look_for)
            for flag in catalogue.FLAGS.values()]


# A store may be the Kubernetes API (a blocking client, up to its timeout): every call
# runs in a worker thread, off the event loop.

async def current(store: flagfile.FlagStore) -> list[FaultFlag]:
    try:
        return describe(await asyncio.to_thread(store.read_variants))
    except flagfile.FlagFileError as exc:
        raise _problem(exc, "") from exc


async def switch(store: flagfile.FlagStore, name: str, variant: str) -> FaultFlag:
    """Set flag `name` to `variant`: 404 for an unknown flag, 422 for an unknown variant,
    each naming the valid ones."""
    try:
        canonical, _ = await asyncio.to_thread(store.set_variant, name, variant)
    except (catalogue.FlagError, flagfile.FlagFileError) as exc:
        raise _problem(exc, name) from exc
    return next(flag for flag in await current(store) if flag.name == canonical)


async def reset(store: flagfile.FlagStore) -> list[FaultFlag]:
    try:
        await asyncio.to_thread(store.reset)
    except flagfile.FlagFileError as exc:
        raise _problem(exc, "") from exc
    return await current(store)


async def page_rows(settings: Settings) -> tuple[list[dict[str, Any]], str | None, bool]:
    """The flags for the admin page, why they cannot be shown (or None), and whether
    they can be switched at all."""
    try:
        store = _store(settings)
    except flagfile.FlagFileError as exc:
        return [row.model_dump() for row in describe({})], str(exc), False
    if store is None:
        return [], _no_flags(), False
    try:
        variants = await asyncio.to_thread(store.read_variants)
    except flagfile.FlagFileError as exc:
        return [row.model_dump() for row in describe({})], str(exc), True
    return [row.model_dump() for row in describe(variants)], None, True
