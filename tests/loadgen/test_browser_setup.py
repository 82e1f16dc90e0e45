"""Whether the browser synthetic journey is on, as `kansoku up` and `status` say it: off
with the reason and the one command that turns it on, or on."""

from __future__ import annotations

import pytest

from kansoku.loadgen.browser_setup import (
    INSTALL_COMMAND,
    BrowserSynthetic,
    browser_requirements,
    browser_synthetic,
)
from tests.browser import missing_chromium


def test_without_chromium_it_is_off_and_says_the_command(clean_env: pytest.MonkeyPatch
                                                        ) -> None:
    clean_env.setenv("KANSOKU_SYNTHETICS_CHROMIUM_PATH", "/nonexistent/chromium")
    state = browser_synthetic()
    assert (state.on, state.reason, state.command) == (
        False, "Chromium is not installed at /nonexistent/chromium", INSTALL_COMMAND)
    assert state.notice() == (
        "Browser synthetic off: Chromium is not installed at /nonexistent/chromium, so no "
        "monitor loads the pages in a browser (imageSlowLoad shows only there). Turn it "
        "on: kansoku install-browser")


def test_left_out_of_the_schedule_it_is_off_and_the_fix_is_the_setting(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KANSOKU_SYNTHETICS_JOURNEYS", "browse,checkout")
    state = browser_synthetic()
    assert (state.on, state.reason, state.command) == (
        False, "KANSOKU_SYNTHETICS_JOURNEYS leaves out storefront", None)
    notice = state.notice()
    assert notice is not None and "Turn it on" not in notice


def test_with_chromium_and_playwright_it_is_on_and_says_nothing(
        clean_env: pytest.MonkeyPatch) -> None:
    if reason := missing_chromium():
        pytest.skip(reason)
    assert browser_synthetic() == BrowserSynthetic(True)
    assert BrowserSynthetic(True).notice() is None


def test_the_install_asks_pip_for_kansokus_browser_extra() -> None:
    """What `kansoku install-browser` gives pip is pyproject's `browser` extra."""
    (playwright,) = browser_requirements()
    assert playwright.startswith("playwright") and "<2" in playwright


@pytest.mark.usefixtures("japanese")
def test_a_japanese_reader_is_told_in_japanese(clean_env: pytest.MonkeyPatch) -> None:
    """The notice is said in the reader's language; the reason a program reads
    (`status --json`) stays English."""
    clean_env.setenv("KANSOKU_SYNTHETICS_CHROMIUM_PATH", "/nonexistent/chromium")
    state = browser_synthetic()
    assert state.reason == "Chromium is not installed at /nonexistent/chromium"
    assert state.notice() == (
        "ブラウザーの合成監視はオフです: Chromium が /nonexistent/chromium にインストールされて"
        "いません。そのため、ブラウザーでページを開く監視がありません (imageSlowLoad は"
        "ブラウザーでしか見えません)。 オンにするには: kansoku install-browser")
    # A state file written before the reason's template was kept: its English reason.
    old = BrowserSynthetic(False, "Playwright is not installed", INSTALL_COMMAND)
    notice = old.notice()
    assert notice is not None and notice.startswith(
        "ブラウザーの合成監視はオフです: Playwright is not installed。")
