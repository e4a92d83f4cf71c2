"""Point Prefect (in this process and its children) at our API, offline-safe."""

from __future__ import annotations

import os

from reelforge.settings import Settings


def configure_prefect(settings: Settings) -> None:
    """Set Prefect's environment unless the caller already chose values.

    Must run before Prefect reads its settings; the telemetry switches keep Prefect from
    calling hosts outside this machine.
    """
    from reelforge.stack import prefect_env

    for key, value in prefect_env(settings).items():
        os.environ.setdefault(key, value)
