"""The access token an emulator bound beyond loopback requires (``sof local up --allow-remote``).

Whoever reaches the emulator's port can create a Lambda function and invoke it, which
runs that code on this machine as the user running the emulator. On loopback that is
the user themself; anywhere else, every request must present the token:

- as its AWS access key id - the ``Credential=<token>/...`` of a SigV4 ``Authorization``
  header (or ``X-Amz-Credential`` of a presigned URL), so boto3 and the AWS CLI work
  unchanged with ``AWS_ACCESS_KEY_ID=<token>``;
- or in an ``X-Sof-Token`` header (the ``/_sof/*`` control endpoints, curl).

The signature itself is not checked: the token is a bearer secret sent in clear text
over plain HTTP, so it keeps out whoever does not have it - use it on a trusted network
or through an SSH tunnel.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs

HEADER = "X-Sof-Token"
ENV_VAR = "SOF_EMULATOR_TOKEN"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9]{16,128}$")


def new_token() -> str:
    """A fresh token that is also a valid access key id (letters and digits only)."""
    return "SOF" + secrets.token_hex(16).upper()


def presented(environ: dict[str, Any]) -> list[str]:
    """Every token candidate a WSGI request carries."""
    found: list[str] = []
    header = environ.get("HTTP_X_SOF_TOKEN")
    if header:
        found.append(str(header).strip())
    authorization = str(environ.get("HTTP_AUTHORIZATION") or "")
    found += _CREDENTIAL.findall(authorization)
    query = str(environ.get("QUERY_STRING") or "")
    if "Credential" in query:
        for value in parse_qs(query).get("X-Amz-Credential", []):
            found.append(value.split("/", 1)[0])
    return found


def allowed(environ: dict[str, Any], token: str) -> bool:
    expected = token.encode()
    return any(hmac.compare_digest(candidate.encode(), expected) for candidate in presented(environ))


def denied() -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's answer to an unknown access key: 403 UnrecognizedClientException."""
    body = json.dumps(
        {
            "__type": "UnrecognizedClientException",
            "message": "The security token included in the request is invalid: this emulator requires its access "
            f"token as the access key id or in an {HEADER} header (see docs/emulator.md).",
        }
    ).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", "UnrecognizedClientException"),
        ("Content-Length", str(len(body))),
    ]
    return "403 Forbidden", headers, body
