"""The shape of the code, checked: no import cycle anywhere in `kansoku` (imports inside
functions and under `TYPE_CHECKING` count: hiding a cycle there does not remove it), the
kit imports nothing built on it, the contracts import no service, no service imports
another, and the explorer's features use nothing of each other but their `models`.

The import graph is grimp's (the library import-linter is built on): it reads every
module's imports from its source, without importing anything. The rules are plain
functions over that graph, and the last tests show each one catching a tiny package of
its own that breaks it.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Sequence
from pathlib import Path

import grimp
import pytest

#: What the kit (shared code that takes plain parameters) must never import: the code
#: built on it.
KIT_MUST_NOT_IMPORT = ("services", "explorer", "commands", "cli", "faults", "loadgen",
                       "chaos", "stack", "contracts")
#: The contracts (the calls between services) sit between the kit and the services:
#: each service's callers import them, so they must not import a service themselves.
CONTRACTS_MUST_NOT_IMPORT = ("services", "explorer", "commands", "cli", "loadgen",
                             "chaos", "stack")


def import_graph(package: str) -> grimp.ImportGraph:
    return grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """Every import cycle, each once: a module, the modules it reaches, and back to it
    (a module that imports itself is a cycle of one)."""
    cycles: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported == importer:
                back: tuple[str, ...] | None = (importer,)
            else:
                back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.setdefault(frozenset(back), (importer, *back))
    return sorted(cycles.values())


def forbidden_chains(graph: grimp.ImportGraph, importer: str, forbidden: list[str]
                     ) -> list[tuple[str, ...]]:
    """Import chains, direct or through other modules, from the package `importer` into
    any of the packages (or modules) `forbidden` that exist."""
    return sorted(chain for target in forbidden if target in graph.modules
                  for chain in graph.find_shortest_chains(importer, target, as_packages=True))


def chains_between_children(graph: grimp.ImportGraph, parent: str) -> list[tuple[str, ...]]:
    """Import chains from one child package of `parent` into another."""
    children = sorted(graph.find_children(parent))
    return sorted(chain for importer in children for imported in children
                  if importer != imported
                  for chain in graph.find_shortest_chains(importer, imported, as_packages=True))


#: What the explorer's features share and which is no feature: each feature may import
#: these, and they import no feature.
EXPLORER_SHARED = ("common", "store")


def feature_breaches(graph: grimp.ImportGraph, parent: str,
                     shared: tuple[str, ...] = EXPLORER_SHARED) -> list[tuple[str, str]]:
    """Imports (importer, imported) that cross the boundary of a feature of `parent`
    (each package under it but the `shared` ones): a feature may import another's
    `models` and nothing else of it; a `models` module imports no feature's other
    modules (so importing one brings no internals along); the `shared` modules import
    no feature at all."""
    shared_modules = {f"{parent}.{name}" for name in shared}
    features = sorted(child for child in graph.find_children(parent)
                      if child not in shared_modules and graph.find_children(child))

    def feature_of(module: str) -> str | None:
        return next((feature for feature in features
                     if module == feature or module.startswith(feature + ".")), None)

    found = []
    for importer in sorted(graph.modules):
        mine = feature_of(importer)
        in_shared = any(importer == name or importer.startswith(name + ".")
                        for name in shared_modules)
        if mine is None and not in_shared:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            theirs = feature_of(imported)
            if theirs is None or (theirs == mine and not importer.endswith(".models")):
                continue
            allowed = ((not in_shared and imported == f"{theirs}.models")
                       or (importer.endswith(".models") and imported.endswith(".models")))
            if not allowed:
                found.append((importer, imported))
    return found


def shown(chains: Sequence[tuple[str, ...]]) -> str:
    return "\n".join(" -> ".join(chain) for chain in chains)


@pytest.fixture(scope="module")
def kansoku() -> grimp.ImportGraph:
    return import_graph("kansoku")


def test_there_is_no_import_cycle(kansoku: grimp.ImportGraph) -> None:
    cycles = import_cycles(kansoku)
    assert cycles == [], f"import cycles (each back to its first module):\n{shown(cycles)}"


def test_the_kit_imports_nothing_built_on_it(kansoku: grimp.ImportGraph) -> None:
    chains = forbidden_chains(kansoku, "kansoku.kit",
                              [f"kansoku.{name}" for name in KIT_MUST_NOT_IMPORT])
    assert chains == [], f"the kit imports what is built on it:\n{shown(chains)}"


def test_the_contracts_import_no_service(kansoku: grimp.ImportGraph) -> None:
    chains = forbidden_chains(kansoku, "kansoku.contracts",
                              [f"kansoku.{name}" for name in CONTRACTS_MUST_NOT_IMPORT])
    assert chains == [], f"the contracts import what is built on them:\n{shown(chains)}"


def test_no_service_imports_another(kansoku: grimp.ImportGraph) -> None:
    chains = chains_between_children(kansoku, "kansoku.services")
    assert chains == [], f"a service imports another:\n{shown(chains)}"


def test_explorer_features_use_only_each_others_models(kansoku: grimp.ImportGraph) -> None:
    breaches = feature_breaches(kansoku, "kansoku.explorer")
    assert breaches == [], ("an explorer feature reaches into another's internals (or a "
                            f"shared module into a feature):\n{shown(breaches)}")


# --- the rules catch what they are for -------------------------------------------------

@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An empty package of a name of its own on sys.path: (its name, its folder)."""
    name = f"toy_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, folder


def write(folder: Path, module: str, source: str) -> None:
    path = folder.joinpath(*module.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(folder).parents:
        (folder / parent / "__init__.py").touch()
    path.with_suffix(".py").write_text(textwrap.dedent(source))


def test_a_cycle_is_found_wherever_its_imports_hide(toy: tuple[str, Path]) -> None:
    name, folder = toy
    write(folder, "clean", "import json\n")
    write(folder, "orders", f"from {name} import payments\n")
    write(folder, "payments", f"""
        def refund():
            from {name}.orders import cancel  # inside a function
        """)
    write(folder, "alerts", f"""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from {name}.notify import Notifier
        """)
    write(folder, "notify", f"from {name}.rules import RULES\n")
    write(folder, "rules", f"from {name} import alerts\n")
    write(folder, "itself", f"from {name} import itself\n")
    assert import_cycles(import_graph(name)) == [
        (f"{name}.alerts", f"{name}.notify", f"{name}.rules", f"{name}.alerts"),
        (f"{name}.itself", f"{name}.itself"),
        (f"{name}.orders", f"{name}.payments", f"{name}.orders"),
    ]


def test_no_cycle_is_no_finding(toy: tuple[str, Path]) -> None:
    name, folder = toy
    write(folder, "outcomes", "FAILED = 'failed'\n")
    write(folder, "browser", f"from {name}.outcomes import FAILED\n")
    write(folder, "monitor", f"from {name} import browser, outcomes\n")
    assert import_cycles(import_graph(name)) == []


def test_an_import_into_what_the_kit_must_not_know_is_found(toy: tuple[str, Path]) -> None:
    name, folder = toy
    write(folder, "kit.db", "import json\n")
    write(folder, "kit.flags", f"from {name}.topology import SHOP\n")
    write(folder, "topology", f"from {name}.services.cart import app\n")  # indirect
    write(folder, "services.cart.app", f"from {name}.kit import db\n")
    write(folder, "explorer.app", f"from {name}.kit import db\n")
    graph = import_graph(name)
    assert forbidden_chains(graph, f"{name}.kit", [f"{name}.services", f"{name}.explorer",
                                                   f"{name}.faults"]) == [
        (f"{name}.kit.flags", f"{name}.topology", f"{name}.services.cart.app")]


def test_a_service_importing_another_is_found(toy: tuple[str, Path]) -> None:
    name, folder = toy
    write(folder, "kit.http", "import json\n")
    write(folder, "services.cart.api", f"from {name}.kit import http\n")
    write(folder, "services.orders.api", f"from {name}.kit import http\n")
    assert chains_between_children(import_graph(name), f"{name}.services") == []
    write(folder, "services.orders.service", f"""
        def price():
            from {name}.services.cart.api import lines
        """)
    assert chains_between_children(import_graph(name), f"{name}.services") == [
        (f"{name}.services.orders.service", f"{name}.services.cart.api")]


def test_a_feature_reaching_into_another_is_found(toy: tuple[str, Path]) -> None:
    name, folder = toy
    explorer = f"{name}.explorer"
    write(folder, "explorer.store", "import json\n")
    write(folder, "explorer.common.time", f"from {name}.explorer import store\n")
    write(folder, "explorer.alerts.models", "STATES = ('firing',)\n")
    write(folder, "explorer.alerts.queries", f"from {name}.explorer import store\n")
    write(folder, "explorer.alerts.routes", f"from {name}.explorer.alerts import queries\n")
    write(folder, "explorer.slos.models", f"from {name}.explorer.alerts.models import STATES\n")
    write(folder, "explorer.slos.routes", f"""
        from {name}.explorer.alerts.models import STATES
        from {name}.explorer.common import time
        """)
    write(folder, "explorer.app", f"from {name}.explorer.alerts import routes\n")  # wiring
    assert feature_breaches(import_graph(name), explorer) == []
    write(folder, "explorer.slos.budget", f"""
        def burn():
            from {name}.explorer.alerts.queries import windows  # inside a function
        """)
    write(folder, "explorer.alerts.models", f"from {name}.explorer.alerts import queries\n")
    write(folder, "explorer.common.sql", f"from {name}.explorer.slos.models import SLO\n")
    assert feature_breaches(import_graph(name), explorer) == [
        (f"{explorer}.alerts.models", f"{explorer}.alerts.queries"),
        (f"{explorer}.common.sql", f"{explorer}.slos.models"),
        (f"{explorer}.slos.budget", f"{explorer}.alerts.queries"),
    ]
