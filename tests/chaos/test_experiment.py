"""Reading experiments: the shipped ones, parameters, and the one plain line every
mistake gets — from the parser and from `kansoku chaos run` (which stops before it
looks for a stack)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kansoku.chaos import experiment as model
from kansoku.cli import app
from kansoku.kit.i18n import in_english

GOOD = """
title: Flag and pause
parameters: {hold: 3s, limit: 5}
hypothesis:
  title: Customers can buy
  probes:
    - type: checkout
      max_seconds: 2s
    - {type: ready, component: nats}
    - {type: http, path: /api/v1/products, status: [200, 304]}
    - {type: error-rate, service: orders, window: 10s, max_percent: "${limit}"}
    - {type: latency, service: payments, route: /charges, max_p95: 500ms}
method:
  - action: set-flag
    flag: paymentunreachable
    variant: on
  - {action: pause, component: payments, for: "${hold}"}
  - {action: wait, for: "1.5s"}
rollback:
  - {action: set-flag, flag: paymentUnreachable, variant: off}
recovery_timeout: 30s
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_shipped_experiment_reads_and_names_what_it_probes() -> None:
    shipped = model.shipped()
    assert set(shipped) == {"payments-outage", "database-restart", "nats-outage",
                            "slow-payments"}
    for name in shipped:
        experiment = model.load(name)
        assert experiment.title and experiment.description
        assert experiment.hypothesis.probes and experiment.method and experiment.rollback
        assert experiment.source == f"{name} (shipped)"
    outage = model.load("payments-outage")
    assert [str(step.describe()) for step in outage.method] == ["stop payments", "wait 20s"]
    assert [str(step.describe()) for step in outage.rollback] == ["start payments"]
    assert "a customer checks out and pays" in [str(p.label) for p in outage.hypothesis.probes]


def test_parameters_fill_in_and_can_be_overridden() -> None:
    experiment = model.load("slow-payments", {"latency": "3s", "duration": "4s"})
    flag, wait = experiment.method
    assert isinstance(flag, model.SetFlag) and flag.variant == "3s"
    assert isinstance(wait, model.Wait) and wait.for_ == 4.0
    assert experiment.parameters["latency"] == "3s"
    assert experiment.recovery_timeout == 60.0  # ${recovery_timeout}'s default


def test_a_written_experiment_reads_with_every_probe_and_action() -> None:
    experiment = model.parse(GOOD, "good.yaml", {"limit": "20"})
    labels = [str(probe.label) for probe in experiment.hypothesis.probes]
    assert labels == ["a checkout is paid within 2s", "nats is ready",
                      "GET gateway /api/v1/products answers 200/304",
                      "orders error rate ≤ 20% over 10s",
                      "payments /charges p95 ≤ 500ms over 30s"]
    # YAML reads a bare on/off as true/false: they are the variants' names again.
    assert [str(step.describe()) for step in experiment.method] == [
        "set-flag paymentUnreachable=on", "pause payments for 3s", "wait 1500ms"]
    assert str(experiment.rollback[0].describe()) == "set-flag paymentUnreachable=off"
    assert experiment.probe_interval == 1.0 and experiment.recovery_timeout == 30.0


BROKEN = "title: T\nhypothesis: {title: H, probes: [{type: checkout}]}\n"


@pytest.mark.parametrize(("text", "message"), [
    (BROKEN + "method: [{action: explode}]",
     "method[0] (explode), field 'action': must be one of set-flag, stop, start, kill, "
     "pause, wait"),
    (BROKEN + "method: [{action: stop, component: paymnts}]",
     "method[0] (stop), field 'component': there is no component 'paymnts' — choose one "
     "of: postgresql, nats, valkey, explorer,"),
    (BROKEN + "method: [{action: wait, for: 1s}, {action: set-flag, flag: nope, "
              "variant: 'on'}]",
     "method[1] (set-flag), field 'flag': There is no fault flag 'nope'. Flags: "
     "paymentFailure,"),
    (BROKEN + "method: [{action: set-flag, flag: paymentLatency, variant: 2s}]",
     "method[0] (set-flag), field 'variant': Flag paymentLatency has no variant '2s'. "
     "Variants: off, 1s, 3s."),
    (BROKEN + "method: [{action: pause, component: payments}]",
     "method[0] (pause), field 'for': missing — it is required"),
    (BROKEN + "method: [{action: wait, for: soon}]",
     "method[0] (wait), field 'for': 'soon' is not a duration"),
    (BROKEN + "method: [{action: wait, for: 0s}]",
     "method[0] (wait), field 'for': must be longer than 0s"),
    (BROKEN + "method: [{action: wait, for: 1s}]\nrollback: [{action: start}]",
     "rollback[0] (start), field 'component': missing — it is required"),
    ("title: T\nhypothesis: {title: H, probes: [{type: ping}]}\n"
     "method: [{action: wait, for: 1s}]",
     "hypothesis.probes[0] (ping), field 'type': must be one of ready, http, checkout, "
     "error-rate, latency"),
    ("title: T\nhypothesis: {title: H, probes: [{type: error-rate, service: orders}]}\n"
     "method: [{action: wait, for: 1s}]",
     "hypothesis.probes[0] (error-rate), field 'max_percent': missing — it is required"),
    ("title: T\nhypothesis: {title: H, probes: [{type: http, component: valkey}]}\n"
     "method: [{action: wait, for: 1s}]",
     "hypothesis.probes[0] (http), field 'component': valkey does not speak HTTP"),
    ("title: T\nhypothesis: {title: H, probes: [{type: checkout, colour: red}]}\n"
     "method: [{action: wait, for: 1s}]",
     "hypothesis.probes[0] (checkout), field 'colour': not a field of a probe"),
    (BROKEN, "field 'method': missing — it is required"),
    (BROKEN + "method: [{action: wait, for: 1s}]\nmethods: []",
     "field 'methods': not a field of an experiment"),
    (BROKEN + "method: [{action: wait, for: '${later}'}]",
     "field 'method[0].for': unknown parameter '${later}' — parameters: none"),
    ("title: [", "not valid YAML"),
    ("- just\n- a list", "expected a mapping with title:, hypothesis:, method:"),
])
def test_mistakes_name_the_step_and_the_field(text: str, message: str) -> None:
    with pytest.raises(model.ExperimentError) as raised:
        model.parse(text, "mine.yaml")
    assert str(raised.value).startswith(f"mine.yaml: {message}"), str(raised.value)


def test_in_japanese_the_steps_probes_and_mistakes_are_japanese(japanese: None) -> None:
    """What a step and a probe are called, and what is wrong with a document, in the
    reader's language; the report's JSON keeps the English (`Phrase.english`)."""
    experiment = model.parse(GOOD, "good.yaml", {"limit": "20"})
    assert [str(probe.label) for probe in experiment.hypothesis.probes][:2] == [
        "購入の支払いが 2s 以内に済む", "nats が ready"]
    pause = experiment.method[1].describe()
    assert (str(pause), pause.english) == ("payments を 3s 一時停止", "pause payments for 3s")
    with pytest.raises(model.ExperimentError) as raised:
        model.parse(BROKEN + "method: [{action: stop, component: paymnts}]", "mine.yaml")
    assert str(raised.value).startswith(
        "mine.yaml: method[0] (stop), フィールド 'component': コンポーネント 'paymnts' は"
        "ありません。次から選んでください: postgresql, nats"), str(raised.value)
    with pytest.raises(model.ExperimentError) as raised:
        model.parse(BROKEN, "mine.yaml")
    assert str(raised.value) == "mine.yaml: フィールド 'method': 指定されていません。必須です"


def test_a_shipped_experiments_own_words_are_japanese_too(japanese: None) -> None:
    """Title, description, hypothesis and probe names of a shipped experiment are in
    the catalogs (scripts/messages extracts them); the JSON keeps them as written, and
    an experiment someone writes is shown as they wrote it."""
    outage = model.load("payments-outage")
    assert model.in_words(outage.title) == "payments の停止"
    assert model.in_words(outage.hypothesis.title) == "お客さんが閲覧でき、購入できる"
    labels = [probe.label for probe in outage.hypothesis.probes]
    assert [str(label) for label in labels] == ["API が商品を返す", "お客さんが購入して支払う",
                                                "orders が ready"]
    assert [in_english(label) for label in labels] == [
        "the API lists products", "a customer checks out and pays", "orders is ready"]
    mine = model.parse(BROKEN.replace("{type: checkout}", "{type: checkout, name: 'my {x}'}")
                       + "method: [{action: wait, for: 1s}]", "mine.yaml")
    assert str(mine.hypothesis.probes[0].label) == "my {x}"
    assert model.in_words(mine.title) == "T"
    code, shown, _ = run("--lang", "ja", "chaos", "list")
    assert code == 0
    assert "payments の停止" in shown and "NATS の停止" in shown
    assert "メッセージブローカー (JetStream を使う NATS) がしばらく止まります。" in " ".join(
        line.strip("│ ") for line in shown.splitlines())


def test_an_override_of_a_parameter_it_lacks_is_refused() -> None:
    with pytest.raises(model.ExperimentError, match="no parameter 'outgae' to set — its "
                       "parameters: outage, recovery_timeout"):
        model.load("payments-outage", {"outgae": "5s"})


@pytest.fixture
def no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory where no stack runs, and wide output."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KANSOKU_FLAGS_FILE", raising=False)
    return tmp_path


@pytest.mark.parametrize(("content", "argument", "message"), [
    (None, "missing.yaml", "missing.yaml does not exist — give a YAML file, or a shipped "
                           "experiment: database-restart, nats-outage,"),
    (None, "no-such-experiment", "there is no experiment 'no-such-experiment' — shipped: "
                                 "database-restart,"),
    ("title: [", "bad.yaml", "bad.yaml: not valid YAML"),
    (BROKEN + "method: [{action: set-flag, flag: nope, variant: 'on'}]", "bad.yaml",
     "bad.yaml: method[0] (set-flag), field 'flag': There is no fault flag 'nope'."),
    (BROKEN + "method: [{action: kill, component: mongodb}]", "bad.yaml",
     "bad.yaml: method[0] (kill), field 'component': there is no component 'mongodb'"),
])
def test_chaos_run_says_what_is_wrong_in_one_line(no_stack: Path, content: str | None,
                                                  argument: str, message: str) -> None:
    if content is not None:
        (no_stack / argument).write_text(content)
    target = str(no_stack / argument) if argument.endswith(".yaml") else argument
    code, out, err = run("chaos", "run", target, "--data-dir", str(no_stack))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err


def test_chaos_run_without_a_stack_says_how_to_start_one(no_stack: Path) -> None:
    code, out, err = run("chaos", "run", "payments-outage", "--json",
                         "--data-dir", str(no_stack))
    assert code == 1 and out == ""
    assert err.strip() == (f"error: kansoku is not running (data directory {no_stack}) — "
                           "start it with 'kansoku up --detach'")
    code, _, err = run("chaos", "run", "payments-outage", "--param", "outage",
                       "--data-dir", str(no_stack))
    assert code == 1 and "--param 'outage' is not NAME=VALUE" in err


def test_chaos_list_shows_the_shipped_experiments(no_stack: Path) -> None:
    code, out, _ = run("chaos", "list")
    assert code == 0
    for name, title in (("payments-outage", "Payments outage"),
                        ("database-restart", "Database restart"),
                        ("nats-outage", "NATS outage"), ("slow-payments", "Slow payments")):
        row = next(line for line in out.splitlines() if name in line)
        assert title in row
    assert "outage=20s" in out and "latency=1s" in out
