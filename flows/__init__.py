"""The pipeline's Prefect flows, by Prefect flow name.

Loaded by name (``load_flow``) so that callers that only list, retry or deploy runs do not
import torch and the stages until a flow actually runs.
"""

from __future__ import annotations

import importlib
from typing import Any

FLOWS = {
    "video": "flows.video:video_flow",
    "campaign": "flows.campaign:campaign_flow",
    "personalise": "flows.personalise:personalise_flow",
    "ad": "flows.ad:ad_flow",
    "versions": "flows.versions:versions_flow",
    "review": "flows.review:review_flow",
}


def load_flow(name: str) -> Any:
    """The flow object registered as ``name`` (KeyError for an unknown name)."""
    module, _, attr = FLOWS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
