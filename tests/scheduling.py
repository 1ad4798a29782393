"""How `make test` spreads the suite over pytest-xdist workers (``-n N --dist loadscope``).

- **A module on one worker.** ``--dist loadscope`` sends each test module to one worker, so a
  module-scoped emulator starts once, not once per worker, and a module's tests that share
  state (tests/test_faults.py's README table) run together, in order.
- **Longest first.** The modules are sent longest first, by the durations of the last run
  (kept in pytest's cache, ``.pytest_cache``), so the last module to start is a short one and
  no worker is left alone with a long one at the end. A module this machine never timed (a
  fresh clone, as in CI) takes its total from ``durations.json`` (per module, from a full run;
  ``python tests/scheduling.py`` rewrites it from this machine's cache); a test never timed
  anywhere counts ``UNKNOWN_SLOW_S`` when marked slow, else ``UNKNOWN_S``. Durations only
  order the work: a stale file costs minutes, never a verdict.

(``--dist loadgroup`` would allow finer units, but with pytest 9.2 it silently stops grouping:
pytest-xdist issue #1386.) Without ``--dist loadscope`` (a plain ``pytest tests/test_x.py``)
nothing is reordered.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

CACHE_KEY = "scale-or-fail/durations"
ORDER_FLAG = "sof_longest_first"  # the controller tells its workers to order the collection
UNKNOWN_SLOW_S = 20.0
UNKNOWN_S = 0.5
SHIPPED = Path(__file__).with_name("durations.json")  # module -> seconds of a full run, for a fresh clone


def _shipped() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(SHIPPED.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


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

    shipped = _shipped()

    def cost(item: pytest.Item) -> float:
        default = UNKNOWN_SLOW_S if item.get_closest_marker("slow") else UNKNOWN_S
        return float(known.get(item.nodeid, default))

    def module_cost(module: str, tests: list[pytest.Item]) -> float:
        if module in shipped and not any(item.nodeid in known for item in tests):
            return shipped[module]
        return sum(cost(item) for item in tests)

    ordered = sorted(modules.items(), key=lambda entry: -module_cost(*entry))  # stable on ties
    items[:] = [item for _, tests in ordered for item in tests]


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


CACHE_DIR = Path(__file__).resolve().parent.parent / ".pytest_cache"


def _write_shipped() -> None:
    """durations.json from this machine's last full run: each module's total, in seconds."""
    found = json.loads((CACHE_DIR / "v" / CACHE_KEY).read_text())
    totals: dict[str, float] = defaultdict(float)
    for nodeid, seconds in found.items():
        totals[nodeid.split("::", 1)[0]] += float(seconds)
    ordered = dict(sorted(((m, round(t, 1)) for m, t in totals.items()), key=lambda entry: -entry[1]))
    SHIPPED.write_text(json.dumps(ordered, indent=1) + "\n")


if __name__ == "__main__":
    _write_shipped()
