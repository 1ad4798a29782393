"""The emulator's HTTP server (issue 22, capacity): waitress, each request on an elastic thread.

werkzeug's development server, which served the emulator before, answers every request with
``Connection: close`` (so every client call opens a TCP connection, and the server starts a thread
for it), parses the headers with the ``email`` package and then watches the socket for up to 10 ms to
drain it. waitress keeps connections alive and parses requests itself: in `bench/capacity_bench.py`'s
A/B, a DescribeStateMachine cost the emulator 1.66 ms of CPU where it cost 2.06 ms, and the client
1.17 ms where it cost 1.27 ms (medians; docs/benchmarks.md, "The HTTP server").

waitress runs requests on a fixed number of threads, so a request that waits - a synchronous Invoke
of a function that sleeps, a StartSyncExecution - would hold one, and the next requests would queue
behind the last one: a wait AWS does not have, which a lab would misread as the service's. Here each
request runs at once on a parked thread of an :class:`ElasticThreads` pool, or on a new one, as
werkzeug's thread per connection did; waitress still owns the sockets, the parsing and the writing.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from scaleorfail.emulator.threadpool import LOG, ElasticThreads

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CONNECTION_LIMIT = 4096  # open client connections (waitress's default of 100 is below a Locust run's)
IDLE_CONNECTION_S = 120  # a kept-alive connection with no request for this long is closed


class ElasticTasks(ThreadedTaskDispatcher):  # type: ignore[misc]
    """waitress's task dispatcher, each task at once on a thread of an elastic pool (no queue)."""

    def __init__(self, pool: ElasticThreads) -> None:
        super().__init__()
        self.pool = pool

    def add_task(self, task: Any) -> None:
        self.pool.submit(lambda: self._service(task))

    @staticmethod
    def _service(task: Any) -> None:
        try:
            task.service()
        except BaseException:  # as waitress's own handler thread reports it
            LOG.exception("an HTTP request failed: %r", task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        """Requests still running end with the process (their threads are daemons), as under werkzeug."""
        return True


def access(app: WsgiApp, log: Any = None) -> WsgiApp:
    """What werkzeug's server gave the app and its log, kept: moto reads the request target as it
    arrived from ``RAW_URI`` (waitress names it ``REQUEST_URI``: S3 keys with encoded characters
    route by it), and a request answered with an error gets an access-log line, in werkzeug's format;
    a line per request would bury those among hundreds a second."""
    stream = sys.stderr if log is None else log

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not status.startswith(("1", "2", "3")):
                when = time.strftime("%d/%b/%Y %H:%M:%S")
                request = f"{environ.get('REQUEST_METHOD')} {environ.get('RAW_URI')} {environ.get('SERVER_PROTOCOL')}"
                code = status.split(" ", maxsplit=1)[0]
                stream.write(f'{environ.get("REMOTE_ADDR", "-")} - - [{when}] "{request}" {code} -\n')
                stream.flush()
            return start_response(status, headers, exc_info)

        return app(environ, respond)

    return middleware


class HttpServer:
    """waitress serving app on an already listening socket, until :meth:`shutdown`."""

    def __init__(self, app: WsgiApp, listener: socket.socket) -> None:
        self.pool = ElasticThreads("http")
        self.sockets: dict[int, Any] = {}  # the listener's, the connections' and the wake-up pipe's
        self.server = create_server(
            access(app),
            map=self.sockets,
            _dispatcher=ElasticTasks(self.pool),  # waitress's parameter for a dispatcher of one's own
            sockets=[listener],
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_CONNECTION_S,
            asyncore_use_poll=True,  # select() stops at file descriptor 1024; Lambda environments hold many
            clear_untrusted_proxy_headers=False,  # no proxy stands in front: X-Forwarded-* pass as sent
            ident="scale-or-fail",
        )
        self._serving = threading.Event()
        self._ended = threading.Event()

    def serve_forever(self) -> None:
        self._serving.set()
        try:
            self.server.run()
        finally:
            self._ended.set()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stops accepting and closes every connection (on the serving thread, whose loop then ends)."""
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.sockets))
        if self._serving.is_set():
            self._ended.wait(timeout_s)
