"""The timing model's engines on a fake clock: paced sleeps, the history writer, token buckets, quotas.

A fake clock makes every verdict exact and independent of the machine: ``sleep(s)`` moves it
by ``s`` plus a chosen lateness, as a busy machine's sleeps end late.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scaleorfail.emulator.quotas import START_EXECUTION, STATE_TRANSITION, Quotas, published
from scaleorfail.emulator.settings import PROFILES, describe_quotas, resolve
from scaleorfail.emulator.timing import LAG_CAP_S, HistoryWriter, Pacer, TokenBucket
from scaleorfail.errors import UserError


class Clock:
    """Seconds on a fake clock; every sleep ends `late` seconds after it should."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.late = late
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds + self.late

    def work(self, seconds: float) -> None:
        """The emulator's own work (moto, a worker's reply) on this thread."""
        self.now += seconds


def test_paced_sleeps_keep_to_their_modelled_total_when_each_ends_late() -> None:
    clock = Clock(late=0.002)
    pacer = Pacer(clock.sleep, clock)
    for _ in range(10):
        pacer.sleep(0.010)
    # 10 x 10 ms modelled: only the last sleep's lateness is left over (unpaced: 120 ms)
    assert clock.now == pytest.approx(0.102)


def test_the_emulators_own_work_counts_towards_the_next_modelled_sleep() -> None:
    clock = Clock()
    pacer = Pacer(clock.sleep, clock)
    pacer.mark()
    for _ in range(5):
        clock.work(0.003)  # moto's work between two modelled waits
        pacer.sleep(0.010)
    assert clock.now == pytest.approx(0.050)  # as modelled: the work was inside the modelled time
    assert clock.slept == pytest.approx([0.007] * 5)


def test_real_time_aws_spends_too_is_not_made_up() -> None:
    clock = Clock()
    pacer = Pacer(clock.sleep, clock)
    pacer.mark()
    clock.work(0.250)  # a handler's run: real on AWS too
    pacer.mark()
    pacer.sleep(0.015)
    assert clock.slept == [0.015] and clock.now == pytest.approx(0.265)


def test_lateness_is_made_up_only_up_to_a_cap() -> None:
    clock = Clock()
    pacer = Pacer(clock.sleep, clock)
    pacer.mark()
    clock.work(1.0)  # far behind: not made up by skipping every later sleep
    pacer.sleep(0.030)
    pacer.sleep(0.030)
    assert clock.slept == pytest.approx([0.030 * 2 - LAG_CAP_S])


def test_a_cold_pacer_thread_starts_on_time() -> None:
    clock = Clock()
    clock.work(5.0)  # before the thread's first mark: not counted
    pacer = Pacer(clock.sleep, clock)
    pacer.sleep(0.020)
    assert clock.slept == [0.020]


def test_work_run_apart_on_the_callers_thread_is_timed_as_on_a_thread_of_its_own() -> None:
    # a Task without TimeoutSeconds runs on its state's thread: the state's own work before it is not made up
    # by the Task's modelled waits (a cold start's init floor), and the state keeps its lag for its own
    clock = Clock()
    pacer = Pacer(clock.sleep, clock)
    pacer.mark()
    clock.work(0.030)  # the state's interpreter work: 30 ms behind
    with pacer.apart():
        assert pacer.lag() == 0.0
        pacer.sleep(0.150)  # the modelled init: not shortened
    assert clock.slept == [0.150]
    assert pacer.lag() == pytest.approx(LAG_CAP_S)  # its own mark back: 180 ms since it, capped
    with pacer.apart():
        pacer.mark()
        clock.work(0.020)
    assert pacer.lag() == pytest.approx(LAG_CAP_S)  # the block's marks stay in the block


def test_the_history_writer_charges_base_plus_per_event_and_makes_up_a_late_write() -> None:
    clock = Clock(late=0.001)
    pacer = Pacer(clock.sleep, clock)
    writer = HistoryWriter(0.004, 0.002, pacer, clock.sleep, clock)
    for _ in range(3):
        writer.write()  # one thread: each write carries its one event
    assert writer.writes == 3 and writer.events == 3
    # 3 x (4 + 2) ms; each late write shortens the next one, so only the last one's 1 ms is left
    assert clock.now == pytest.approx(0.019)
    assert clock.slept == pytest.approx([0.006, 0.005, 0.005])


def test_a_write_of_the_threads_own_event_alone_absorbs_the_threads_own_work() -> None:
    clock = Clock()
    pacer = Pacer(clock.sleep, clock)
    writer = HistoryWriter(0.004, 0.002, pacer, clock.sleep, clock)
    pacer.mark()
    for _ in range(3):
        clock.work(0.002)  # moto's work before each event, on the only thread writing
        writer.write()
    assert clock.slept == pytest.approx([0.004] * 3) and clock.now == pytest.approx(0.018)


def test_an_ideal_history_writer_costs_nothing() -> None:
    clock = Clock()
    writer = HistoryWriter(0.0, 0.0, Pacer(clock.sleep, clock), clock.sleep, clock)
    writer.write()
    assert not writer.active and clock.now == 0.0 and writer.writes == 0


def test_a_token_bucket_refuses_past_its_size_and_refills_continuously() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 2.0, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.work(0.5)  # 2 per second: one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.work(60.0)  # never more than the bucket holds
    assert bucket.available() == 3


def test_reserved_tokens_queue_in_order() -> None:
    clock = Clock()
    bucket = TokenBucket(2, 4.0, clock)
    assert [bucket.reserve() for _ in range(5)] == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75])


def test_an_infinite_bucket_never_throttles() -> None:
    bucket = TokenBucket(float("inf"), float("inf"))
    assert all(bucket.take() for _ in range(10_000)) and bucket.reserve() == 0.0


def test_step_functions_quotas_are_the_regions_published_ones_unless_the_profile_says_otherwise() -> None:
    assert published("us-east-1") == {START_EXECUTION: (1300.0, 300.0), STATE_TRANSITION: (5000.0, 1500.0)}
    assert published("eu-west-1") == published("us-west-2") == published("us-east-1")
    assert published("eu-central-1") == {START_EXECUTION: (800.0, 150.0), STATE_TRANSITION: (800.0, 500.0)}
    default = Quotas(resolve(profile="default", environ={}))
    assert default.limits("ap-southeast-2") == published("ap-southeast-2")
    sandbox = Quotas(resolve(profile="sandbox", environ={}))
    assert sandbox.limits("us-east-1") == {
        START_EXECUTION: PROFILES["sandbox"].start_execution,
        STATE_TRANSITION: PROFILES["sandbox"].state_transition,
    }
    assert PROFILES["sandbox"].start_execution[0] < published("eu-central-1")[START_EXECUTION][0]
    tuned = resolve(profile="sandbox", environ={"SOF_START_EXECUTION_BUCKET": "3", "SOF_START_EXECUTION_RATE": "0.5"})
    assert Quotas(tuned).limits("us-east-1")[START_EXECUTION] == (3.0, 0.5)


def test_start_execution_buckets_are_per_region() -> None:
    quotas = Quotas(replace(resolve(environ={}), start_execution_bucket=2, start_execution_rate=0.001))
    assert [quotas.start_execution("us-east-1") for _ in range(3)] == [True, True, False]
    assert quotas.start_execution("eu-west-1")  # another Region, another bucket


def test_lambda_scaling_is_per_function() -> None:
    quotas = Quotas(replace(resolve(environ={}), lambda_scaling_bucket=1, lambda_scaling_rate=0.001))
    assert quotas.new_environment("arn:aws:lambda:us-east-1:123456789012:function:a")
    assert not quotas.new_environment("arn:aws:lambda:us-east-1:123456789012:function:a")
    assert quotas.new_environment("arn:aws:lambda:us-east-1:123456789012:function:b")


def test_quota_settings_are_checked_and_described() -> None:
    with pytest.raises(UserError, match="quotas cannot be negative"):
        resolve(environ={"SOF_STATE_TRANSITION_RATE": "-1"})
    with pytest.raises(UserError, match="Lambda scaling rate"):
        resolve(environ={"SOF_LAMBDA_SCALING_RATE": "0"})
    line = describe_quotas(resolve(environ={}).to_json(), published("us-east-1"))
    assert line == (
        "quotas: StartExecution 1,300 burst / 300 per s published, StateTransition 5,000 burst / 1,500 per s "
        "published, Lambda scaling (per function) 1,000 burst / 100 per s"
    )
    assert "StartExecution 100 burst / 10 per s," in describe_quotas(
        resolve(profile="sandbox", environ={}).to_json(), published("us-east-1")
    )
