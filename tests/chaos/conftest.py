"""The chaos scenarios run only when asked for: ``make chaos`` or ``pytest -m chaos`` (or with
``SWITCHBOARD_CHAOS=1``). A plain ``pytest`` skips them with a reason, since they take minutes each.
Each scenario's table of counts is printed again at the end of the run."""

from __future__ import annotations

import os

import pytest

from tests.chaos import scenarios


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in (config.option.markexpr or "") or os.environ.get("SWITCHBOARD_CHAOS") == "1":
        return
    skip = pytest.mark.skip(reason="chaos scenario: run with `make chaos` or `pytest -m chaos`")
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter) -> None:
    if scenarios.REPORTS:
        terminalreporter.section("chaos scenarios")
        for text in scenarios.REPORTS:
            terminalreporter.write(text + "\n")
