"""Print the settings table for docs/configuration.md from the Settings model (one source).

Paste the output into docs/configuration.md; tests/reelforge/test_readme.py checks it is there.
"""

from __future__ import annotations

from reelforge.core.settings import Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if alias is not None else f"REELFORGE_{name.upper()}"
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = "(secret)"
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{env}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
