"""Safety gates: a text gate before any GPU time is spent, a visual gate after generation.

Public API (plain functions, no Prefect):
- ``tasks.safety.text``: ``check_text``, ``check_texts``, ``require_safe_texts``
- ``tasks.safety.visual``: ``moderate_file``, ``require_safe_media``
- ``tasks.safety.verdicts``: ``TextVerdict``, ``VisualVerdict``, ``TextBlocked``,
  ``VisualBlocked``, ``ModerationError``
- ``tasks.safety.policy``: ``load_policy``, ``Policy``
"""
