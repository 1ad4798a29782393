"""When the emulator's full garbage collections run: between runs, or after a long busy stretch.

A full collection walks the whole heap holding the GIL (200 ms once the emulator holds a few runs'
histories); in the middle of a run it stalls every execution. The policy is a pure decision on a
clock, a busy signal and whether young collections promoted anything: tested here with a fake clock.
"""

from __future__ import annotations

import gc

from scaleorfail.emulator import gcpolicy
from scaleorfail.emulator.gcpolicy import FullCollections


class World:
    """A fake clock, a busy flag, collections counted."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.busy = False
        self.pending = True
        self.collected = 0

    def policy(self, quiet_s: float = 1.0, most_deferred_s: float = 60.0) -> FullCollections:
        return FullCollections(
            busy=lambda: self.busy,
            quiet_s=quiet_s,
            most_deferred_s=most_deferred_s,
            clock=lambda: self.now,
            collect=self.collect,
            pending=lambda: self.pending,
        )

    def collect(self) -> None:
        self.collected += 1
        self.pending = False

    def run(self, policy: FullCollections, seconds: float, step: float = 0.25) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += step
            policy.tick()


def test_a_run_is_never_paused_and_the_quiet_after_it_collects_once() -> None:
    world = World()
    policy = world.policy()
    world.busy = True
    world.run(policy, 50)  # a 50 s run: garbage pending all along, no pause
    assert world.collected == 0
    world.busy = False
    world.run(policy, 0.75)  # quiet, but not yet for quiet_s
    assert world.collected == 0
    world.run(policy, 0.5)
    assert world.collected == 1 and policy.stats.full_collections == 1 and policy.stats.while_busy == 0
    world.pending = True
    world.run(policy, 5)  # the stray allocations of an idle emulator: not again so soon
    assert world.collected == 1
    world.run(policy, gcpolicy.LEAST_APART_S)
    assert world.collected == 2


def test_nothing_promoted_since_the_last_full_collection_means_nothing_to_collect() -> None:
    world = World()
    world.pending = False
    policy = world.policy()
    world.run(policy, 30)
    assert world.collected == 0


def test_a_long_busy_stretch_is_collected_at_most_once_per_deferral() -> None:
    world = World()
    policy = world.policy(most_deferred_s=60)
    world.busy = True
    world.run(policy, 59.5)
    assert world.collected == 0
    world.run(policy, 1)  # 60 s of work since the last full collection: its garbage is reclaimed now
    assert world.collected == 1 and policy.stats.while_busy == 1
    world.pending = True
    world.run(policy, 59)
    assert world.collected == 1
    world.run(policy, 1.5)
    assert world.collected == 2 and policy.stats.while_busy == 2


def test_the_pause_is_measured() -> None:
    world = World()
    policy = world.policy()
    world.run(policy, gcpolicy.LEAST_APART_S + 2)
    assert policy.stats.full_collections == 1 and policy.stats.longest_pause_ms >= 0.0


def test_installed_it_freezes_the_startup_heap_and_takes_the_full_collection_over() -> None:
    before = gc.get_threshold()
    policy = FullCollections(busy=lambda: True, most_deferred_s=3600)
    try:
        policy.install()
        assert policy.stats.frozen_at_start > 0 and gc.get_freeze_count() >= policy.stats.frozen_at_start
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] == gcpolicy.NEVER
    finally:
        policy.stop()
        gc.set_threshold(*before)
        gc.unfreeze()
