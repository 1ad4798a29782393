"""Errors a user can cause: printed as one line with the cause and one with the fix."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the CLI prints it without a traceback."""

    def __init__(self, cause: str, fix: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix

    def render(self) -> str:
        return f"error: {self.cause}" + (f"\n  fix: {self.fix}" if self.fix else "")
