"""Errors that reach the user: one line naming the problem and the fix, and an exit code."""

from __future__ import annotations

from typing import Any


class ReelForgeError(Exception):
    """Anything else that went wrong (exit code 1)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        flow_run_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.flow_run_id = flow_run_id
        self.extra = extra or {}  # merged into the --json failure object


class InvalidInput(ReelForgeError):
    """The caller's input is wrong; the message says how to fix it (exit code 2)."""

    exit_code = 2


class BlockedBySafety(ReelForgeError):
    """A safety gate refused the content (exit code 3)."""

    exit_code = 3

    def __init__(self, message: str, *, category: str, flow_run_id: str | None = None) -> None:
        super().__init__(message, flow_run_id=flow_run_id)
        self.category = category


class ServiceUnavailable(ReelForgeError):
    """A backing service (PostgreSQL, S3, Prefect) cannot be reached (exit code 1)."""
