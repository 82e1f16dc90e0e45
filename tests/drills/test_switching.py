"""What a drill does to a stack that needs no running stack: flags switched on and off
in the flags file, what a fix is probed with, where the history lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from kansoku.chaos import experiment as chaos
from kansoku.chaos.actions import Stack
from kansoku.drills import model
from kansoku.drills import stack as drill_stack
from kansoku.faults import flagfile
from kansoku.kit.i18n import Language, Phrase
from kansoku.stack.settings import StackSettings


@pytest.fixture
def stack(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Stack:
    return Stack(StackSettings(data_dir=tmp_path), tmp_path / "flags.json")


async def test_a_flag_fault_is_switched_on_and_off(stack: Stack) -> None:
    fault = model.FlagFault(flag="orderQueueLag", variant="on")
    assert str(await drill_stack.switch_on(stack, fault)) == "orderQueueLag set to on"
    assert flagfile.read_variants(stack.flags_file)["orderQueueLag"] == "on"
    assert drill_stack.still_on(stack, fault)
    done = await drill_stack.switch_off(stack, fault)
    assert str(done) == "orderQueueLag set to off"
    # Said again in the learner's language: the flag-switching words, too.
    assert isinstance(done, Phrase) and done.said_in(Language.JAPANESE) == (
        "orderQueueLag を off に切り替えました")
    assert not drill_stack.still_on(stack, fault)


async def test_stopping_needs_a_running_stack(stack: Stack) -> None:
    with pytest.raises(drill_stack.DrillStackError, match="kansoku is not running"):
        await drill_stack.switch_on(stack, model.StopFault(stop="payments"))
    # Not knowing counts as not recovered.
    assert drill_stack.still_on(stack, model.StopFault(stop="payments"))


async def test_a_fix_is_not_probed_while_the_fault_is_on(stack: Stack) -> None:
    fault = model.FlagFault(flag="paymentFailure", variant="100%")
    await drill_stack.switch_on(stack, fault)
    recovered, detail = await drill_stack.check_fix(stack, fault)
    assert (recovered, detail) == (False, drill_stack.STILL_BROKEN)
    assert detail.said_in(Language.JAPANESE).startswith("障害はまだ残っています")


def test_the_recovery_probes_follow_the_cause() -> None:
    errors = drill_stack.recovery_probes(model.FlagFault(flag="paymentFailure",
                                                         variant="50%").truth)
    assert [type(probe) for probe in errors] == [chaos.ReadyProbe, chaos.CheckoutProbe,
                                                 chaos.ErrorRateProbe]
    assert isinstance(errors[0], chaos.ReadyProbe) and errors[0].component == "payments"
    slow = drill_stack.recovery_probes(model.FlagFault(flag="catalogSlowQuery",
                                                       variant="on").truth)
    assert isinstance(slow[-1], chaos.LatencyProbe) and slow[-1].service == "catalog"
    assert slow[-1].max_p95 == drill_stack.MAX_P95_SECONDS


def test_the_history_goes_to_the_configured_database_first(stack: Stack) -> None:
    settings = StackSettings(data_dir=stack.settings.data_dir,
                             database_url="postgresql://u:p@db:5432/kansoku")
    assert drill_stack.database_url(settings, stack) == "postgresql://u:p@db:5432/kansoku"
    with pytest.raises(drill_stack.DrillStackError, match="kansoku is not running"):
        drill_stack.database_url(stack.settings, stack)
