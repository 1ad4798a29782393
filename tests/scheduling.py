"""How `make test` spreads the suite over pytest-xdist workers (``-n N --dist loadscope``).

- **A module on one worker.** ``--dist loadscope`` sends each test module to one worker, so a
  module-scoped emulator starts once, not once per worker, and a module's tests that share
  state (tests/test_faults.py's README table) run together, in order.
- **Longest first.** The modules are sent longest first, by the durations of the last run
  (kept in pytest's cache, ``.pytest_cache``), so the last module to start is a short one and
  no worker is left alone with a long one at the end. A test never timed counts
  ``UNKNOWN_SLOW_S`` when marked slow, else ``UNKNOWN_S``.

(``--dist loadgroup`` would allow finer units, but with pytest 9.2 it silently stops grouping:
pytest-xdist issue #1386.) Without ``--dist loadscope`` (a plain ``pytest tests/test_x.py``)
nothing is reordered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

CACHE_KEY = "scale-or-fail/durations"
ORDER_FLAG = "sof_longest_first"  # the controller tells its workers to order the collection
UNKNOWN_SLOW_S = 20.0
UNKNOWN_S = 0.5


def _controller_of_loadscope(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.getoption("dist", None) == "loadscope"


def pytest_configure(config: pytest.Config) -> None:
    if _controller_of_loadscope(config):
        config.option.loadscopereorder = False  # xdist would sort the modules by test count: keep our order
        config.pluginmanager.register(Durations(config), "scale-or-fail-durations")


@pytest.hookimpl(optionalhook=True)  # an xdist hook, on the controller, for each worker
def pytest_configure_node(node: Any) -> None:
    if _controller_of_loadscope(node.config):
        node.workerinput[ORDER_FLAG] = True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    if not workerinput.get(ORDER_FLAG):
        return
    cache = getattr(config, "cache", None)
    known: dict[str, float] = (cache.get(CACHE_KEY, {}) if cache is not None else {}) or {}
    modules: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        modules[item.nodeid.split("::", 1)[0]].append(item)

    def cost(item: pytest.Item) -> float:
        default = UNKNOWN_SLOW_S if item.get_closest_marker("slow") else UNKNOWN_S
        return float(known.get(item.nodeid, default))

    ordered = sorted(modules.values(), key=lambda tests: -sum(cost(item) for item in tests))  # stable on ties
    items[:] = [item for tests in ordered for item in tests]


class Durations:
    """On the controller: each test's setup + call + teardown time, saved for the next run's order."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.seconds:
            return
        known = dict(cache.get(CACHE_KEY, {}) or {})
        known.update({nodeid: round(seconds, 2) for nodeid, seconds in self.seconds.items()})
        cache.set(CACHE_KEY, known)
