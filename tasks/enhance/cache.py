"""On-disk JSON cache of LLM rewrites, keyed per (prompt, model, parameters, seed).

Template and vocabulary results are deterministic and not cached. One file per entry under
``<REELFORGE_HOME>/cache/enhance/<key[:2]>/<key>.json``, written atomically, so concurrent
workers never read half a file. A corrupt entry counts as a miss.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class EnhanceCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def default(cls) -> EnhanceCache:
        from reelforge.core.settings import get_settings

        return cls(get_settings().home_dir / "cache" / "enhance")

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
