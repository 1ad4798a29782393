"""The emulator's door against web browsers (a WSGI middleware, outermost).

Loopback keeps other machines out, not the browser on this one: any page the user opens
can send requests to ``http://127.0.0.1:4566``, and whoever can send requests can create
a Lambda function and run it. SDKs, the AWS CLI, Terraform and Locust send no ``Origin``
and no ``Sec-Fetch-*`` headers; browsers send them on every cross-site request. So:

- a request whose ``Host`` is not the address the emulator is bound to (127.0.0.1,
  localhost, ``*.localhost``, [::1] or another loopback literal, with its port) is refused:
  a DNS-rebinding page reaches the port under its own domain name;
- a request carrying an ``Origin`` other than the emulator's own (``null`` included), or a
  ``Sec-Fetch-Site`` other than ``same-origin``/``none``, is refused - preflights
  (``OPTIONS`` with ``Access-Control-Request-Method``) included;
- no response carries an ``Access-Control-*`` header, so the browser shows a page none
  of the emulator's answers even for the requests it let through (plain navigations).

Refusals are HTTP 403 with one JSON message and counted (``GET /_sof/health``:
``refused``). An emulator bound beyond loopback (``--allow-remote``) is reached under
names this module cannot know: there the access token guards the door and the ``Host``
check is off; the ``Origin`` checks stay.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SAFE_FETCH_SITES = ("same-origin", "none")  # "none": the user typed the address or opened a bookmark
DOC = "docs/emulator.md#security"


def _split_host(value: str) -> tuple[str, int | None]:
    """("127.0.0.1", 4566) from "127.0.0.1:4566", ("::1", 80) from "[::1]:80"; port None when absent/bad."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    else:
        name, port_text = value, ""
    if not port_text:
        return name, None
    try:
        return name, int(port_text)
    except ValueError:
        return name, -1


def loopback_name(name: str) -> bool:
    """A name that always means this machine: loopback IP literals, localhost and *.localhost (RFC 6761;
    browsers resolve these themselves, so DNS cannot rebind them)."""
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class BrowserGuard:
    """Decides, per request, whether it may reach the emulator; counts what it refused."""

    def __init__(self, port: int, check_host: bool = True) -> None:
        self.port = port
        self.check_host = check_host
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _own_address(self, value: str) -> bool:
        name, port = _split_host(value)
        return loopback_name(name) and (port == self.port or (port is None and self.port == 80))

    def _own_origin(self, origin: str) -> bool:
        scheme, _, rest = origin.partition("://")
        return scheme.lower() == "http" and "/" not in rest and self._own_address(rest)

    def refusal(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """(what, why) when the request is refused, None when it may pass."""
        host = str(environ.get("HTTP_HOST") or "")
        if self.check_host and not self._own_address(host):
            return "host", (
                f"the Host header {host[:100]!r} is not this emulator's address (127.0.0.1, localhost or [::1] "
                f"with port {self.port}): requests under another name (DNS rebinding) are refused"
            )
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not self._own_origin(str(origin)):
            return "origin", (
                f"cross-origin browser requests are refused (Origin {str(origin)[:100]!r}): the emulator serves "
                "SDKs and CLIs, which send no Origin"
            )
        site = environ.get("HTTP_SEC_FETCH_SITE")
        if site is not None and str(site).lower() not in SAFE_FETCH_SITES:
            return "origin", (
                f"cross-site browser requests are refused (Sec-Fetch-Site {str(site)[:40]!r}): the emulator serves "
                "SDKs and CLIs"
            )
        return None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"host": self.refused["host"], "origin": self.refused["origin"]}

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            refused = self.refusal(environ)
            if refused is not None:
                what, why = refused
                with self._lock:
                    self.refused[what] += 1
                body = json.dumps(
                    {"__type": "AccessDeniedException", "message": f"{why} (see {DOC})", "Message": why}
                ).encode()
                start_response(
                    "403 Forbidden",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("x-amzn-ErrorType", "AccessDeniedException"),
                    ],
                )
                return [body]

            def without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
                return start_response(status, kept, *rest)

            return app(environ, without_cors)

        return middleware
