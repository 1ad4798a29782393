"""Step Functions: moto's ASL interpreter, corrected and made fast enough to load.

* ``...state_map.iteration.inline_iteration_component.InlineIterationComponent._eval_body``
  (``InlineIterationComponentEvalInput``): the inline Map cap of 40 (``pipeline.MAP_LIMIT``).
* ``...state_map.iteration.iteration_worker.IterationWorker._eval_pool``: a loop instead of
  one recursion per item (1,000+ items at low concurrency overflowed the stack).
* ``...parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint`` /
  ``_execution_logic`` (``_evaluation_details.state_machine_details.definition``): parsed
  programs pooled per definition instead of an ANTLR parse per execution (a pool that is empty
  gives a copy of the definition's first parse).
* ``...parser.asl.parse.preprocessor.Preprocessor._query_language_per_scope``: a QueryLanguage scope
  stack per parse (moto's, on the class, was shared by every parse, on every thread).
* ``...parser.asl.utils.json_path.parse`` and ``...common.path.result_path.parse``
  (jsonpath_ng parsers, rebuilt per evaluation in 5.2.5): memoised.
* ``...backend.execution.BaseExecutionWorkerCommunication._reflect_execution_status``
  (``execution.exec_status`` / ``output`` / ``error`` / ``cause``): the status is set last; a
  stopped execution keeps the moment StopExecution was asked as its stopDate.
* ``...common.retry.retrier_decl`` (``time``, ``RetrierDecl._eval_body``): a Retry back-off that a
  StopExecution ends (:mod:`scaleorfail.emulator.sfn_stop`); a retry takes its StateTransition
  token (:func:`.quotas.transition`).
* ``...state.exec.execute_state.ExecutionState._evaluate_with_timeout``: a Task runs on a reused
  thread (:class:`scaleorfail.emulator.threadpool.ElasticThreads`), not a new one each time; the
  waiting thread's paced time restarts when the Task returns (timing model).
* ``...backend.execution_worker.ExecutionWorker.start``, ``...component.program.program.Program.eval``
  and ``...iteration.inline_iteration_component.InlineIterationComponent._launch_worker``: an
  execution, each program it runs (the execution's own, each Map iteration's) and each Map
  worker run on reused threads too (moto started a thread for each and kept it in ``TMP_THREADS``).
  Each program's thread knows the program it evaluates (``sfn_stop.evaluating``): the error lines moto's
  ``eval_component`` and ``program`` loggers write about a stopped execution's pruned states are filtered
  out (``sfn_stop.AfterStop``, a logging filter on those two loggers).
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scaleorfail.emulator import sfn_stop
from scaleorfail.emulator.moto_ext.core import declare, replace
from scaleorfail.emulator.moto_ext.stepfunctions.copies import json_copy
from scaleorfail.emulator.moto_ext.stepfunctions.history import end_timed_out
from scaleorfail.emulator.moto_ext.stepfunctions.quotas import transition
from scaleorfail.emulator.threadpool import ElasticThreads
from scaleorfail.emulator.timing import PACER
from scaleorfail.pipeline import MAP_LIMIT

INLINE_MAP_CAP = MAP_LIMIT
SFN_THREADS = ElasticThreads("sfn", on_job=PACER.forget)  # the interpreter's threads, reused
PROGRAM_POOL_SIZE = 256  # parsed programs kept per definition
DEFINITIONS_COPIED = 256  # definitions whose first parse is kept to copy (the oldest dropped first)
PROGRAMS = {"parsed": 0, "copied": 0, "reused": 0}  # how executions got their programs (/_sof/health)
LOG = logging.getLogger("scale-or-fail")
MAP_ITERATION = "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration"
EVAL_COMPONENT = "moto.stepfunctions.parser.asl.component.eval_component"  # loggers, named after their modules
PROGRAM = "moto.stepfunctions.parser.asl.component.program.program"


@declare(
    f"{MAP_ITERATION}.inline_iteration_component.InlineIterationComponent._eval_body",
    why="the inline Map runs at most 40 iterations at once, as on AWS (moto: unbounded)",
)
def _map_cap() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
        DEFAULT_MAX_CONCURRENCY_VALUE,
    )

    component = inline_iteration_component.InlineIterationComponent
    original = component._eval_body

    def capped_eval_body(self: Any, env: Any) -> None:
        eval_input = env.stack[-1]
        requested = eval_input.max_concurrency
        items = len(eval_input.input_items)
        wanted = items if requested == DEFAULT_MAX_CONCURRENCY_VALUE else requested
        capped = max(1, min(wanted, INLINE_MAP_CAP, max(items, 1)))
        if capped != requested:
            env.stack[-1] = inline_iteration_component.InlineIterationComponentEvalInput(
                state_name=eval_input.state_name,
                max_concurrency=capped,
                input_items=eval_input.input_items,
                parameters=eval_input.parameters,
                item_selector=eval_input.item_selector,
            )
            for attribute, value in vars(eval_input).items():  # subclasses carry more fields
                if not hasattr(env.stack[-1], attribute):
                    setattr(env.stack[-1], attribute, value)
        original(self, env)

    replace(component, "_eval_body", capped_eval_body)


@declare(
    f"{MAP_ITERATION}.iteration_worker.IterationWorker._eval_pool",
    why="one recursion per item overflowed the stack (1,000+ items at low concurrency): the same logic as a loop",
)
def _iteration_loop() -> None:
    """IterationWorker._eval_pool recurses once per item a worker processes: a Map of 1,000+
    items at low concurrency overflows the stack and the execution hangs. Same logic, as a loop."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
        IterationWorker,
    )

    def eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
        while True:
            if job is None:
                self._env.close_frame(worker_frame)
                return
            job_frame = worker_frame.open_inner_frame()
            self._eval_job(env=job_frame, job=job)
            worker_frame.close_frame(job_frame)
            if isinstance(job.job_output, Exception) or self.stopped():
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            next_job = self._job_pool.next_job()
            if next_job is None:
                worker_frame.event_history_context.source_event_id = (
                    job_frame.event_history_context.last_published_event_id
                )
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            self._job_pool.close_job(job)
            job = next_job

    replace(IterationWorker, "_eval_pool", eval_pool)


class ProgramTemplates:
    """A definition's first parse, pickled before it ever ran, copied for each later program (0.2 ms to
    unpickle, not a 15-30 ms ANTLR parse). Callers that ask for a definition while its first parse is
    under way wait for it rather than each parsing too: a load test's first second (forty users on a
    new state machine) was forty parses, a second of the GIL. A program pickle cannot copy is parsed
    each time. The oldest definitions' copies are dropped past `keep`."""

    def __init__(self, parse: Callable[[str], Any], keep: int = DEFINITIONS_COPIED) -> None:
        self._parse = parse
        self._keep = keep
        self._templates: dict[str, bytes | None] = {}  # None: not picklable, parsed each time
        self._parsing: dict[str, threading.Event] = {}  # definitions whose first parse is under way
        self._lock = threading.Lock()

    def fresh(self, definition: str) -> Any:
        """A program of definition no one else holds."""
        while True:
            with self._lock:
                template, known = self._templates.get(definition), definition in self._templates
                first = self._parsing.get(definition)
                if template is not None:
                    PROGRAMS["copied"] += 1  # counted under the lock: a += from many threads can lose one
                elif not known and first is None:
                    self._parsing[definition] = threading.Event()  # this caller parses; the others wait
            if template is not None:
                return pickle.loads(template)
            if known or first is None:
                break
            first.wait()
        try:
            program = self._parse(definition)
            with self._lock:
                PROGRAMS["parsed"] += 1
            if not known:
                self._keep_copy(definition, program)
        finally:
            if not known:
                with self._lock:
                    self._parsing.pop(definition).set()  # the waiting copy it (or, if it failed, parse it)
        return program

    def _keep_copy(self, definition: str, program: Any) -> None:
        try:
            copied: bytes | None = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            copied = None
        with self._lock:
            if len(self._templates) >= self._keep:
                self._templates.pop(next(iter(self._templates)))  # the oldest definition's
            self._templates[definition] = copied


@declare(
    "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint",
    why="a parsed program taken from the definition's pool (moto parsed with ANTLR per execution, ~30 ms)",
)
@declare(
    "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._execution_logic",
    why="the program goes back to its pool when the execution ends",
)
def _program_pool() -> None:
    """Each execution re-parsed its definition with ANTLR (15-30 ms of CPU for the pipeline's).

    Parsed programs are kept in a pool per definition and reused - by one execution at a
    time, since a few components (Parallel's branches) keep per-run fields. When the pool is
    empty (more executions of a definition at once than have ended), :class:`ProgramTemplates`
    gives a copy of the definition's first parse.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    pools: dict[str, list[Any]] = {}
    templates = ProgramTemplates(lambda definition: AmazonStateLanguageParser.parse(definition)[0])
    lock = threading.Lock()
    original_logic: Any = ExecutionWorker._execution_logic

    def get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            pool = pools.get(definition)
            program = pool.pop() if pool else None
            if program is not None:
                PROGRAMS["reused"] += 1
        if program is None:
            program = templates.fresh(definition)
        self._sof_program = (definition, program)
        return program

    def execution_logic(self: Any) -> Any:
        try:
            return original_logic(self)
        finally:
            taken = getattr(self, "_sof_program", None)
            if taken is not None:
                with lock:
                    pool = pools.setdefault(taken[0], [])
                    if len(pool) < PROGRAM_POOL_SIZE:
                        pool.append(taken[1])

    replace(ExecutionWorker, "_get_evaluation_entrypoint", get_evaluation_entrypoint)
    replace(ExecutionWorker, "_execution_logic", execution_logic)


@declare(
    "moto.stepfunctions.parser.asl.parse.preprocessor.Preprocessor._query_language_per_scope",
    why="each parse keeps its own QueryLanguage scope stack: moto's is one list on the class, shared by every "
    "parse - a refused JSONata definition left its scope on it (every later definition was read as JSONata: "
    "InputPath ignored), and parses on two threads emptied each other's (IndexError: an execution that "
    "never ended)",
)
def _parser_scopes() -> None:
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    def scopes(self: Any) -> list[Any]:
        found: list[Any] | None = self.__dict__.get("_sof_scopes")
        if found is None:
            found = self.__dict__["_sof_scopes"] = []
        return found

    replace(Preprocessor, "_query_language_per_scope", property(scopes))


@declare(
    "moto.stepfunctions.parser.asl.utils.json_path.parse",
    why="JSONPath parses memoised (moto builds a ply parser at each use)",
)
@declare(
    "moto.stepfunctions.parser.asl.component.common.path.result_path.parse",
    why="ResultPath parses memoised, likewise",
)
def _jsonpath_cache() -> None:
    """moto's interpreter re-parses every JSONPath (building a ply parser) at each use: memoise it."""
    import functools

    from jsonpath_ng.ext.parser import parse as parse_extended
    from jsonpath_ng.parser import parse as parse_plain
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    replace(json_path, "parse", functools.lru_cache(maxsize=4096)(parse_extended))
    replace(result_path, "parse", functools.lru_cache(maxsize=4096)(parse_plain))


@declare(
    "moto.stepfunctions.parser.backend.execution.BaseExecutionWorkerCommunication._reflect_execution_status",
    why="the terminal status set after the output / error (DescribeExecution saw SUCCEEDED without output)",
)
def _execution_status_order() -> None:
    """moto 5.2.5's ``BaseExecutionWorkerCommunication._reflect_execution_status`` sets
    ``exec_status`` = SUCCEEDED before ``output`` (and FAILED before ``error``/``cause``), so a
    DescribeExecution in between saw a SUCCEEDED execution without its output. Same logic, with
    the status set last, as AWS never shows a terminal status without its result."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    def reflect(self: Any) -> None:
        execution = self.execution
        state = execution.exec_worker.env.program_state()
        if not (isinstance(state, ProgramStopped) and execution.stop_date):  # a stop keeps the moment it was asked
            execution.stop_date = datetime.now(UTC)
        if isinstance(state, ProgramEnded):
            execution.output = execution.exec_worker.env.states.get_input()
            execution.exec_status = ExecutionStatus.SUCCEEDED
        elif isinstance(state, ProgramStopped):
            execution.exec_status = ExecutionStatus.ABORTED
        elif isinstance(state, ProgramError):
            details = state.error or {}
            execution.error = details.get("error")
            execution.cause = details.get("cause")
            execution.exec_status = ExecutionStatus.FAILED
        elif isinstance(state, ProgramTimedOut):
            execution.exec_status = ExecutionStatus.TIMED_OUT
        else:
            raise RuntimeWarning(f"Execution ended with unsupported ProgramState type '{type(state)}'.")

    replace(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect)


@declare(
    "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time",
    why="a Retry back-off waited with time.sleep, which a StopExecution did not wake (the execution stayed "
    "RUNNING through it): a wait on the program's state event instead (sfn_stop.InterruptibleSleep)",
)
@declare(
    "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.RetrierDecl._eval_body",
    why="tells the interruptible back-off which program is retrying, then runs moto's own retrier; a retry is a "
    "state transition: it takes a StateTransition token (and waits when throttled)",
)
def _interruptible_retry() -> None:
    """A Retry back-off ends when the execution is stopped; the interpreter's retry loop
    (``ExecutionState._eval_state``, ``while env.is_running()``) then ends on the stop."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_outcome import RetrierOutcome

    original = retrier_decl.RetrierDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        with sfn_stop.evaluating(env):  # the back-off's InterruptibleSleep waits on this env's program state
            original(self, env)
        PACER.mark()  # a Retry's interval is waited on AWS too (timing model: not made up)
        if env.stack and env.stack[-1] == RetrierOutcome.Executed:
            transition(env.event_manager.__dict__.get("_sof_root"))

    replace(retrier_decl, "time", sfn_stop.InterruptibleSleep())
    replace(retrier_decl.RetrierDecl, "_eval_body", eval_body)


def _run_bounded(job: Any, done: threading.Event, timeout_s: float | None) -> bool:
    """Runs a Task's or a program's body, which sets `done` when it ends: with no timeout to wait out, on the
    caller's thread, timed and failing as on a thread of its own (its modelled waits do not make up the
    caller's work; an exception is reported, the caller goes on); else on a pooled thread, waited on at most
    `timeout_s`. True: the body ended in time."""
    if timeout_s is None:
        try:
            with PACER.apart():
                job()
        except Exception:
            LOG.exception("a Step Functions job on its caller's thread failed")
        return True
    SFN_THREADS.submit(job)
    return done.wait(timeout_s)


@declare(
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state.ExecutionState._evaluate_with_timeout",
    why="a Task without TimeoutSeconds runs on its state's thread, one with it on a reusable thread (moto started "
    "a new Thread per Task: a seventh of the emulator's CPU at 700 tasks/s, and a hand-over of the GIL each), and "
    "the waiting thread's paced time restarts when the Task returns: that wait (dispatch, the handler, the task's "
    "own events) is modelled or real service time, not the emulator's work for the paced sleeps to make up - "
    "without a mark the state's next events were shortened by up to LAG_CAP_S each",
)
def _task_thread_wait() -> None:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError, TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    def evaluate_with_timeout(self: Any, env: Environment) -> None:
        """moto 5.2.5's body; the Task runs as _run_bounded says, not on a Thread started anew."""
        self.timeout.eval(env=env)
        timeout_seconds: int = env.stack.pop()
        frame: Environment = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = json_copy(env.stack)  # moto: copy.deepcopy; the stack holds JSON values
        outputs: list[Any] = []
        exceptions: list[Exception | None] = [None]
        terminated = threading.Event()

        def exec_and_notify() -> None:
            try:
                self._eval_execution(frame)
                outputs.extend(frame.stack)
            except Exception as ex:
                exceptions.append(ex)
            terminated.set()

        bound = None if timeout_seconds >= TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS else timeout_seconds
        try:
            finished_on_time = _run_bounded(exec_and_notify, terminated, bound)
        finally:
            PACER.mark()  # the state's paced time restarts when its Task returns
        frame.set_ended()
        env.close_frame(frame)
        exception = exceptions.pop()
        if exception:
            raise exception
        if not finished_on_time:
            raise EvalTimeoutError()
        output = outputs.pop()
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    replace(ExecutionState, "_evaluate_with_timeout", evaluate_with_timeout)


@declare(
    "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker.start",
    why="an execution runs on a reused thread (moto started a new Thread per execution)",
)
@declare(
    "moto.stepfunctions.parser.asl.component.program.program.Program.eval",
    why="a program with TimeoutSeconds (an execution's) runs on a reused thread waited on that long, one without "
    "(a Map iteration's) on its caller's thread (moto started a new Thread per program run: two per execution, one "
    "per Map item); an execution past its "
    "TimeoutSeconds ends its history with ExecutionTimedOut then (moto: once the state in flight ended)",
)
@declare(
    f"{MAP_ITERATION}.inline_iteration_component.InlineIterationComponent._launch_worker",
    why="a Map's workers run on reused threads (moto started a new Thread per worker)",
)
def _pooled_threads() -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.component.program.program import Program
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def start(self: Any) -> None:
        SFN_THREADS.submit(self._execution_logic)

    def program_eval(self: Any, env: Any) -> None:
        """moto 5.2.5's Program.eval: the body on another thread, the caller waits at most the program's timeout;
        with no timeout to wait out, the body runs on the caller's thread (its exceptions reported, as a thread's)."""
        timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
        env.next_state_name = self.start_at.start_at_name
        ended = threading.Event()

        def run() -> None:
            try:
                with sfn_stop.evaluating(env):
                    EvalComponent.eval(self, env)
            finally:
                ended.set()

        if _run_bounded(run, ended, timeout):  # no timeout (a Map iteration's program): on the caller's thread
            return
        env.set_timed_out()
        if not env.is_frame():  # an execution's own program: its history ends now
            end_timed_out(env)

    def launch_worker(self: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
        worker = self._create_worker(env=env, eval_input=eval_input, job_pool=job_pool)
        SFN_THREADS.submit(worker.eval)
        return worker

    for logger in (EVAL_COMPONENT, PROGRAM):  # moto's error lines about a stopped execution's pruned states
        logging.getLogger(logger).addFilter(sfn_stop.AfterStop())
    replace(ExecutionWorker, "start", start)
    replace(Program, "eval", program_eval)
    replace(inline_iteration_component.InlineIterationComponent, "_launch_worker", launch_worker)
