"""The emulator's HTTP server (scaleorfail/emulator/httpserver.py), driven over real sockets."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from scaleorfail.emulator.httpserver import HttpServer, access
from scaleorfail.emulator.server import listen

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers with the request target as the app saw it; a path under /missing is a 404."""
    body = f"{environ['REQUEST_METHOD']} {environ.get('RAW_URI')} {environ['PATH_INFO']}".encode()
    status = "404 Not Found" if environ["PATH_INFO"].startswith("/missing") else "200 OK"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def serve() -> Iterator[Callable[[App], tuple[int, HttpServer]]]:
    servers: list[tuple[HttpServer, threading.Thread]] = []

    def start(app: App) -> tuple[int, HttpServer]:
        listener = listen("127.0.0.1", 0)
        server = HttpServer(app, listener)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return listener.getsockname()[1], server

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(10)


def test_one_connection_carries_many_requests(serve: Callable[[App], tuple[int, HttpServer]]) -> None:
    port, _ = serve(echo)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    for number in range(5):
        connection.request("POST", f"/call/{number}", body=b"{}")
        answer = connection.getresponse()
        answers.append((answer.status, answer.getheader("Connection"), answer.read().decode()))
    assert answers == [(200, None, f"POST /call/{n} /call/{n}") for n in range(5)]
    assert connection.sock is not None  # never closed by the server between the requests
    connection.close()


def test_requests_that_wait_do_not_queue_each_other(serve: Callable[[App], tuple[int, HttpServer]]) -> None:
    """Forty requests each wait in the app until all forty are in it: only a server that runs each at
    once (as werkzeug's thread per connection did, and AWS does) answers them; a fixed pool of
    threads would hold the rest back until the barrier breaks."""
    inside = threading.Barrier(40, timeout=20)

    def waits(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        inside.wait()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    port, _ = serve(waits)
    statuses: list[int] = []

    def call() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/")
        statuses.append(connection.getresponse().status)
        connection.close()

    callers = [threading.Thread(target=call) for _ in range(40)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(40)
    assert not inside.broken
    assert statuses == [200] * 40


def test_more_connections_than_waitress_allows_by_default_are_served(
    serve: Callable[[App], tuple[int, HttpServer]],
) -> None:
    port, _ = serve(echo)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(150)]
    for connection in connections:  # all open at once, each kept alive after its first answer
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"GET / /"
    for connection in connections:
        connection.request("GET", "/again")
        assert connection.getresponse().read() == b"GET /again /again"
        connection.close()


def test_the_app_reads_the_target_as_sent_and_only_errors_are_logged() -> None:
    log = io.StringIO()
    app = access(echo, log)
    seen: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/bucket/a%2Fb?x=1",
        "PATH_INFO": "/bucket/a/b",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    body = b"".join(app(dict(environ), lambda status, headers, exc_info=None: seen.append(status)))
    assert body == b"GET /bucket/a%2Fb?x=1 /bucket/a/b"  # moto routes S3 keys by RAW_URI, werkzeug's name
    assert log.getvalue() == ""
    b"".join(app({**environ, "PATH_INFO": "/missing"}, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["200 OK", "404 Not Found"]
    line = log.getvalue()
    assert line.count("\n") == 1 and line.startswith("127.0.0.1 - - [")
    assert line.endswith('] "GET /bucket/a%2Fb?x=1 HTTP/1.1" 404 -\n')


def test_shutdown_ends_serving_with_a_connection_still_open() -> None:
    listener = listen("127.0.0.1", 0)
    server = HttpServer(echo, listener)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    kept = socket.create_connection(listener.getsockname()[:2], timeout=10)
    kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"GET / /"):  # the whole answer, however the segments arrive
        received = kept.recv(4096)
        assert received, answer
        answer += received
    assert answer.startswith(b"HTTP/1.1 200 OK")
    server.shutdown()
    serving.join(10)
    assert not serving.is_alive()
    assert kept.recv(4096) == b""  # the kept-alive connection was closed, not left hanging
    kept.close()
