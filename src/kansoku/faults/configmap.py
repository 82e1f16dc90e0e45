"""The fault flags in a Kubernetes cluster: one ConfigMap in flagd's format.

In a cluster the services share no file system, so the flags document lives in a
ConfigMap (the chart's `<release>-flags`, key `flags.json`). Every pod mounts it as a
directory and its services read `flags.json` there exactly as they read the flags file
under `kansoku up` (`KANSOKU_FLAGS_FILE`; the kubelet replaces the file when the
ConfigMap changes, within its sync period — about a minute). Whoever switches a flag —
`kansoku flags` with a kubeconfig, or in a pod with its service account, and the
gateway's fault page — writes the ConfigMap through the Kubernetes API.

A write is read-modify-write guarded by the object's `resourceVersion`: the API server
refuses a replace made from an older version (409), so two writers at once never lose
each other's change; the loser reads again and retries. The chart creates the ConfigMap
(a Role may only name objects that exist) with no document in it: all flags off.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kansoku.faults.catalogue import canonical_variant, flag_definition
from kansoku.faults.flagfile import (
    FlagFile,
    FlagFileError,
    FlagStore,
    default_path,
    document_text,
    parse_document,
    variants_in,
)

if TYPE_CHECKING:
    from lightkube import ApiError, Client
    from lightkube.resources.core_v1 import ConfigMap

logger = logging.getLogger(__name__)

#: The variable that names the ConfigMap (`[namespace/]name`) holding the flags: writers
#: then go through the Kubernetes API.
FLAGS_CONFIGMAP_VARIABLE = "KANSOKU_FLAGS_CONFIGMAP"

#: The key of the ConfigMap that holds the document; mounted, it is the file's name.
KEY = "flags.json"
#: Writers that lost a race read again and retry this many times before giving up.
ATTEMPTS = 5
#: Seconds a call to the API server may take.
TIMEOUT_SECONDS = 10.0
#: How kansoku's writes appear in the object's managedFields.
FIELD_MANAGER = "kansoku-flags"


class FlagConfigMap:
    """The flags in ConfigMap `name` of `namespace` (None: the namespace of the pod, or
    of the kubeconfig's context), reached with `client` (default: the pod's service
    account, else `KUBECONFIG` or ~/.kube/config)."""

    def __init__(self, name: str, namespace: str | None = None,
                 client: Client | None = None) -> None:
        self.name = name
        self._namespace = namespace
        self._client = client
        self.location = f"configmap {namespace + '/' if namespace else ''}{name}"

    @classmethod
    def named(cls, reference: str) -> FlagConfigMap:
        """`[namespace/]name`, as `KANSOKU_FLAGS_CONFIGMAP` and `--configmap` give it."""
        namespace, _, name = reference.strip().rpartition("/")
        if not name or "/" in namespace:
            raise FlagFileError(f"{FLAGS_CONFIGMAP_VARIABLE}={reference!r} is not a "
                                "ConfigMap: give NAME or NAMESPACE/NAME")
        return cls(name, namespace or None)

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Client]:
        """The client given, or one made for this call (and closed after it): a switch
        is rare, and a client kept open would hold a connection for nothing."""
        if self._client is not None:
            yield self._client
            return
        # Imported here: most kansoku processes never talk to Kubernetes.
        import httpx
        from lightkube import Client, ConfigError, KubeConfig

        try:
            config = KubeConfig.from_env()
        except ConfigError as exc:
            raise FlagFileError(
                f"cannot reach Kubernetes for the flags ({self.location}): {exc} — "
                "run in a pod, or set KUBECONFIG") from exc
        client = Client(config=config, namespace=self._namespace,
                        timeout=httpx.Timeout(TIMEOUT_SECONDS), field_manager=FIELD_MANAGER)
        try:
            yield client
        finally:
            client.close()

    def read_variants(self) -> dict[str, str]:
        with self._connected() as client:
            _, document = self._read(client)
        return variants_in(document)

    def set_variant(self, name: str, variant: str) -> tuple[str, str]:
        flag = flag_definition(name)
        chosen = canonical_variant(flag, variant)
        with self._connected() as client:
            self._write(client, {flag.name: chosen})
        logger.info("fault flag %s set to %s", flag.name, chosen,
                    extra={"flag": flag.name, "variant": chosen})
        return flag.name, chosen

    def reset(self) -> None:
        with self._connected() as client:
            self._write(client, None)

    def _read(self, client: Client) -> tuple[ConfigMap, dict[str, object]]:
        from lightkube import ApiError
        from lightkube.resources.core_v1 import ConfigMap

        try:
            configmap = client.get(ConfigMap, self.name, namespace=self._namespace)
        except ApiError as exc:
            raise self._refused(exc, "read") from exc
        except Exception as exc:  # httpx's transport errors, TLS, an exec plugin failing
            raise FlagFileError(f"cannot reach the Kubernetes API for {self.location}: "
                                f"{exc or type(exc).__name__} — check the kubeconfig or "
                                "the pod's network policy") from exc
        text = (configmap.data or {}).get(KEY)
        if not text:
            return configmap, {}  # as the chart makes it: every flag off
        try:
            return configmap, parse_document(text, f"{self.location} (key {KEY})")
        except FlagFileError:
            return configmap, {}  # a broken document is replaced by the next write

    def _write(self, client: Client, changes: dict[str, str] | None) -> None:
        """Replace the document, from the version just read: on a conflict (someone
        wrote between our read and our write), read again and retry."""
        from lightkube import ApiError

        for _ in range(ATTEMPTS):
            configmap, document = self._read(client)
            configmap.data = {**(configmap.data or {}), KEY: document_text(document, changes)}
            try:
                # The object carries the resourceVersion it was read at: the API server
                # refuses the replace if it changed since.
                client.replace(configmap)
                return
            except ApiError as exc:
                if (exc.status.code or exc.response.status_code) != 409:
                    raise self._refused(exc, "write") from exc
            except Exception as exc:
                raise FlagFileError(f"cannot reach the Kubernetes API for {self.location}: "
                                    f"{exc or type(exc).__name__}") from exc
        raise FlagFileError(f"{self.location} kept changing while the flags were written "
                            f"({ATTEMPTS} attempts): try again")

    def _refused(self, exc: ApiError, doing: str) -> FlagFileError:
        code = exc.status.code or exc.response.status_code
        if code == 404:
            return FlagFileError(f"there is no {self.location}: install the chart with "
                                 "flags.enabled, or name the release's flags ConfigMap "
                                 f"in {FLAGS_CONFIGMAP_VARIABLE}")
        if code in (401, 403):
            return FlagFileError(f"Kubernetes refused to {doing} {self.location} "
                                 f"({code}: {exc.status.message}) — the gateway's service "
                                 "account may; elsewhere use a kubeconfig whose user may "
                                 "get and update that ConfigMap")
        return FlagFileError(f"Kubernetes answered {code} to {doing} {self.location}: "
                             f"{exc.status.message}")


def flag_store(file: Path | None = None, configmap: str | None = None) -> FlagStore | None:
    """The ConfigMap `configmap` (or `KANSOKU_FLAGS_CONFIGMAP`) names, else the file
    `file` (or `KANSOKU_FLAGS_FILE`) names, else None. A ConfigMap wins: in a cluster the
    file is its read-only projection into the pod."""
    configmap = configmap or os.environ.get(FLAGS_CONFIGMAP_VARIABLE, "").strip() or None
    if configmap is not None:
        return FlagConfigMap.named(configmap)
    file = file or default_path()
    return FlagFile(file) if file is not None else None
