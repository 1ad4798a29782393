"""What keeps the console to its own browser tab.

* Host: only the loopback names with the console's port (or the address it was told to
  bind) - a DNS-rebinding page that reaches 127.0.0.1 under its own name is refused.
* Origin / Sec-Fetch-Site: a request another site's page makes is refused, reads too
  (following a link to a page is a navigation, and allowed).
* State-changing requests (start or stop an execution, run a query, harvest a run) are
  POST only, carry the session's CSRF token in a header, and a same-origin Origin.
* Every response: a Content-Security-Policy without inline script or style, Trusted Types
  required (no HTML from strings: the pages build their DOM with textContent), no framing,
  no referrer, no MIME sniffing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, request, session

CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def allowed_hosts(port: int, bind: str) -> set[str]:
    names = set(LOOPBACK_NAMES)
    if bind not in ("127.0.0.1", "localhost", "::1"):
        names.add(f"[{bind}]" if ":" in bind else bind)
    return {f"{name}:{port}" for name in names}


def _refuse(status: int, message: str) -> Response:
    response = jsonify({"error": "Forbidden" if status == 403 else "Misdirected", "message": message})
    response.status_code = status
    return response


def csrf_token() -> str:
    """This browser session's token (made on its first page)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def install(app: Flask, hosts: Iterable[str]) -> None:
    """Register the checks and headers on every request of the app."""
    allowed = {h.lower() for h in hosts}
    origins = {f"http://{h}" for h in allowed}
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # per process: a restart ends every session
        SESSION_COOKIE_NAME="sof_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=512 * 1024,  # an execution input is at most 256 KB; the editor's JSON fits
    )

    @app.before_request
    def _check() -> Any:
        host = (request.host or "").lower()
        if host not in allowed:
            return _refuse(421, f"this console answers to {sorted(allowed)[0]} and the other loopback names only")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in origins:
            return _refuse(403, "cross-origin requests are refused")
        site = request.headers.get("Sec-Fetch-Site", "same-origin")
        navigation = request.method == "GET" and request.headers.get("Sec-Fetch-Mode") == "navigate"
        if site not in ("same-origin", "none") and not navigation:  # a link from elsewhere may open a page
            return _refuse(403, "requests from other sites are refused")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if origin is None:
                return _refuse(403, "a state-changing request must come from the console's own page (no Origin)")
            sent = request.headers.get(CSRF_HEADER, "")
            expected = session.get("csrf")
            if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
                return _refuse(403, "missing or wrong CSRF token: reload the page")
        elif request.method == "OPTIONS":
            return _refuse(403, "no cross-origin requests: there is no CORS here")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers[name] = value
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response
