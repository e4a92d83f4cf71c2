"""The HTTP API and the ops dashboard (``reelforge serve``)."""

from reelforge.api.app import create_app

__all__ = ["create_app"]
