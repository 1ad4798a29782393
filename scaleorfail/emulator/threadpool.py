"""Reusable daemon threads for work that must not wait for a free worker (issue 22, capacity).

moto's interpreter starts a new ``Thread`` for every Task it runs (so that the state's own thread
can wait with the state's timeout), every execution, every program run and every Map worker.
Starting a thread costs its creation and a hand-over of the GIL before ``start()`` returns - for
the Tasks alone, a seventh of the emulator's GIL samples when it ran 700 Lambda tasks/s. An
:class:`ElasticThreads` keeps finished threads parked for the next job instead: a job never queues
behind another (a parked thread takes it, or a new one starts), so a Task that outlives its timeout
holds its thread exactly as a thread of its own would. A thread parked for ``idle_s`` ends.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

Job = Callable[[], None]
IDLE_S = 60.0
LOG = logging.getLogger("scale-or-fail")


class ElasticThreads:
    """Runs each submitted job at once on a parked thread, or on a new one when none is parked."""

    def __init__(self, name: str, idle_s: float = IDLE_S, on_job: Job | None = None) -> None:
        self._name = name
        self._idle_s = idle_s
        self._on_job = on_job  # run on the thread before each job: resets what the previous job left
        self._lock = threading.Lock()
        self._parked: list[queue.SimpleQueue[Job]] = []
        self._started = 0
        self._running = 0  # jobs submitted and not yet ended

    def submit(self, job: Job) -> None:
        with self._lock:
            self._running += 1
            inbox = self._parked.pop() if self._parked else None
            if inbox is None:
                self._started += 1
                number = self._started
        if inbox is not None:
            inbox.put(job)
            return
        threading.Thread(target=self._serve, args=(job,), name=f"{self._name}-{number}", daemon=True).start()

    @property
    def parked(self) -> int:
        with self._lock:
            return len(self._parked)

    @property
    def running(self) -> int:
        """Jobs submitted and not yet ended (0: nothing of this pool's work is in flight)."""
        return self._running

    def _serve(self, job: Job) -> None:
        inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()
        while True:
            if self._on_job is not None:
                self._on_job()
            try:
                job()
            except Exception:  # as a thread of its own would: reported, and the thread serves on
                LOG.exception("a job on %s failed", threading.current_thread().name)
            del job  # what the job held is not kept alive while the thread is parked
            with self._lock:
                self._running -= 1
                self._parked.append(inbox)
            try:
                job = inbox.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:
                    if inbox in self._parked:  # nobody took it: end; else a job is on its way
                        self._parked.remove(inbox)
                        return
                job = inbox.get()
