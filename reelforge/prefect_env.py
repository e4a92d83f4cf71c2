"""Point Prefect (in this process and its children) at our API, offline-safe."""

from __future__ import annotations

import os
import sys

from reelforge.settings import Settings


def configure_prefect(settings: Settings) -> None:
    """Set Prefect's environment unless the caller already chose values.

    Must run before Prefect reads its settings; the telemetry switches keep Prefect from
    calling hosts outside this machine.
    """
    from reelforge.stack import prefect_env

    for key, value in prefect_env(settings).items():
        os.environ.setdefault(key, value)
    if "prefect.context" in sys.modules:
        # Prefect was imported before this ran: it read its settings then, so re-read them
        # (otherwise its client would start a throwaway local server instead of our API).
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        if str(get_current_settings().api.url or "") != os.environ["PREFECT_API_URL"]:
            refresh_global_settings_context()
