"""moto's request path: what every API call paid before reaching its action (issue 22, capacity).

Profiled under a StartExecution burst (py-spy, GIL samples), moto's server spent about a third
of each request before the action ran:

* ``moto.backends.list_of_moto_modules``: a directory listing and an ``isdir`` per moto package
  for every request (``DomainDispatcherApplication.get_backend_for_host``) - listed once;
* ``DomainDispatcherApplication.get_backend_for_host``: then a match of every service's URL
  patterns, in turn, against the request's host - the answer kept per host (the hosts a
  client names are a few per service and region; past :data:`HOSTS_KEPT`, matched anew);
* ``moto.core.responses.method_names_from_class``: ``inspect.getmembers`` of the response class
  for every call (``BaseResponse.call_action``) - once per class;
* ``moto.core.base_backend.BackendDict.__getitem__``: every look-up of a service's backend
  (``lambda_backends[account]``, several per Lambda task and per execution) took moto's one
  global lock and compared the dict with each of the ~100 registered ones - an account's backend
  that exists is now returned as a plain dict read (moto's path makes the missing ones);
* :func:`backend_app`: moto's ``create_backend_app`` makes each service's Flask app with
  ``debug = True``, whose request class then builds a new class on every form-data load
  (``flask.debughelpers.attach_enctype_error_multidict``); the apps are served without debug
  (``PROPAGATE_EXCEPTIONS`` keeps what debug mode did for errors: an unhandled one reaches
  :mod:`scaleorfail.emulator.protocol`, which answers an unknown operation with AWS's 400).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from scaleorfail.emulator.moto_ext.core import apply_deferred, declare, replace

HOSTS_KEPT = 1024  # hosts whose backend is remembered (a client may name any host: the memory is bounded)


@declare("moto.backends.list_of_moto_modules", why="moto's packages listed once (moto listed them per request)")
def _modules_listed_once() -> None:
    from moto import backends

    listed = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterator[str]:
        return iter(listed)

    replace(backends, "list_of_moto_modules", list_of_moto_modules)


@declare(
    "moto.core.responses.method_names_from_class",
    why="a response class's action names found once (moto ran inspect.getmembers on every call)",
)
def _method_names_once() -> None:
    from moto.core import responses

    original = responses.method_names_from_class  # type: ignore[attr-defined]  # moto imports it from moto.utilities.utils
    known: dict[type, list[str]] = {}
    lock = threading.Lock()

    def method_names_from_class(clazz: Any) -> list[str]:
        found = known.get(clazz)
        if found is None:
            found = original(clazz)
            with lock:
                known[clazz] = found
        return found

    replace(responses, "method_names_from_class", method_names_from_class)


@declare(
    "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host",
    why="a host's backend found once (moto matched every service's URL patterns, in turn, on every request)",
)
def _backend_per_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return known[host]
        except KeyError:
            found = original(self, host)
            if len(known) < HOSTS_KEPT:
                known[host] = found
            return found

    replace(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)


@declare(
    "moto.core.base_backend.BackendDict.__getitem__",
    why="an account's existing backend read without moto's global lock and registry scan (taken on every "
    "backend look-up: several per Lambda task); moto's path still makes a missing one",
)
def _existing_backends_read() -> None:
    from moto.core.base_backend import BackendDict

    original = BackendDict.__getitem__

    def getitem(self: Any, account_id: str) -> Any:
        found = dict.get(self, account_id)  # present only once moto made and registered it (reset clears both)
        return found if found is not None else original(self, account_id)

    replace(BackendDict, "__getitem__", getitem)


def backend_app(service: str) -> Any:
    """moto's ``create_backend_app`` for `service`, served without Flask's debug mode."""
    from moto.moto_server.werkzeug_app import create_backend_app

    apply_deferred(service)  # before the service's models serve their first request
    app = create_backend_app(service)  # type: ignore[arg-type]  # moto types it as a Literal of its services
    app.debug = False
    app.config["PROPAGATE_EXCEPTIONS"] = True  # errors reach protocol.wrap, as they did in debug mode
    return app
