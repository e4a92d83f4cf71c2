"""Loading campaign specs and their CSVs, with every problem at its file, line and field.

``load_spec`` reads a YAML spec (products inline or from a CSV) and validates it as a
``CampaignSpec``; a spec with any problem raises ``InvalidInput`` (exit code 2) carrying all
of them (``campaign.yaml:12: schedule.cron: ...``, ``products.csv:5: sku: ...``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from reelforge.campaigns.spec import (
    CSV_OPTIONAL,
    CSV_REQUIRED,
    MAX_FIELD_CHARS,
    CampaignSpec,
    PersonalisationRequest,
    ProductSpec,
)
from reelforge.core.errors import InvalidInput


class Problem(BaseModel):
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def problems_error(problems: list[Problem]) -> InvalidInput:
    first = " ".join(str(problems[0]).split())  # one line, whatever a cell or key holds
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"invalid campaign spec: {first}{more}",
        extra={"problems": [p.model_dump() for p in problems]},
    )


Path_ = tuple[str | int, ...]


MAX_FLOW_DEPTH = 50


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ and { (quotes ignored: an upper bound that is cheap to get)."""
    depth = peak = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            peak = max(peak, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return peak


def _compose(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    """YAML -> Python values plus the line of every key and item."""

    def refuse(line: int | None, field: str, message: str) -> InvalidInput:
        return problems_error([Problem(file=file, line=line, field=field, message=message)])

    depth = _flow_depth(text)
    if depth > MAX_FLOW_DEPTH:  # PyYAML's scanner slows down with the square of the depth
        raise refuse(
            None,
            "",
            f"YAML nested too deeply ({depth} levels of [ or {{): a campaign "
            "spec is a few levels deep",
        )
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character, checked before parsing
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise refuse(
            line,
            "",
            f"YAML: the control character U+{exc.character:04X} is not allowed in YAML: remove it",
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise refuse(line, "", f"YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise refuse(None, "", f"YAML: {message}") from None
    finally:
        loader.dispose()
    marks: dict[Path_, int] = {}
    built: set[int] = set()

    def construct(node: yaml.Node, path: Path_) -> Any:
        try:
            return loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise refuse(
                node.start_mark.line + 1,
                _dotted(path),
                f"YAML: cannot read the value tagged {node.tag} ({problem}): "
                "write a plain value without a !!tag",
            ) from None

    def build(node: yaml.Node, path: Path_) -> Any:
        marks.setdefault(path, node.start_mark.line + 1)
        if len(path) > 20:
            raise refuse(
                node.start_mark.line + 1,
                _dotted(path[:3]),
                "YAML nested too deeply: a campaign spec is a few levels deep",
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in built:  # an alias (*name): refused, "billion laughs" lives here
                raise refuse(
                    node.start_mark.line + 1,
                    _dotted(path),
                    "YAML aliases (&anchor / *alias) are not supported: write the values out",
                )
            built.add(id(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(construct(key_node, path))
                if key in out:
                    raise refuse(
                        key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key"
                    )
                marks[(*path, key)] = key_node.start_mark.line + 1
                out[key] = build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return construct(node, path)

    return (build(node, ()) if node is not None else None), marks


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_dotted(text: str) -> Path_:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _line(marks: dict[Path_, int], path: Path_) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in marks:
            return marks[path[:end]]
    return None


def _unreadable(shown: str, reader: csv.DictReader, exc: Exception) -> InvalidInput:
    if isinstance(exc, UnicodeDecodeError):
        problem = Problem(
            file=shown,
            line=None,
            field="",
            message=f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8",
        )
    else:
        limit = csv.field_size_limit()
        message = (
            f"a cell is longer than {limit} characters: is this the right file? Cells hold "
            f"at most {MAX_FIELD_CHARS} characters (prompts 2000)"
            if "field limit" in str(exc)
            else f"malformed CSV ({exc}): save it as comma-separated UTF-8 text"
        )
        # line_num counts the lines of the records read so far: the bad one starts after them
        problem = Problem(file=shown, line=reader.line_num + 1, field="", message=message)
    return problems_error([problem])


def _header(reader: csv.DictReader, shown: str) -> list[str]:
    try:
        return [h.strip() for h in reader.fieldnames or []]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _unreadable(shown, reader, exc) from None


def _records(reader: csv.DictReader, shown: str) -> Iterator[dict[str | Any, Any]]:
    """The reader's rows; a malformed or non-UTF-8 file is one line of InvalidInput."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _unreadable(shown, reader, exc) from None
        yield row


def load_products_csv(path: Path, *, shown: str) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a products CSV, checked for columns, SKUs and duplicates."""
    problems: list[Problem] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise problems_error(
            [Problem(file=shown, line=None, field="", message=f"cannot read: {exc.strerror}")]
        ) from None
    with handle:
        reader = csv.DictReader(handle)
        header = _header(reader, shown)
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in (*CSV_REQUIRED, *CSV_OPTIONAL)]
        if missing:
            problems.append(
                Problem(
                    file=shown,
                    line=1,
                    field=missing[0],
                    message=f"missing column(s) {', '.join(missing)} "
                    f"(header: {', '.join(header) or 'empty'})",
                )
            )
        if unknown:
            problems.append(
                Problem(
                    file=shown,
                    line=1,
                    field=unknown[0],
                    message=f"unknown column(s) {', '.join(unknown)}: allowed are "
                    f"{', '.join((*CSV_REQUIRED, *CSV_OPTIONAL))}",
                )
            )
        if problems:
            raise problems_error(problems)
        reader.fieldnames = header
        rows: list[tuple[int, dict[str, str]]] = []
        seen: dict[str, int] = {}
        previous_end = 1
        for raw in _records(reader, shown):
            line = previous_end + 1
            previous_end = reader.line_num
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append(
                    Problem(file=shown, line=line, field="", message="more cells than columns")
                )
                continue
            if not any(values.values()):
                continue  # a blank line
            row = {k: v for k, v in values.items() if v != ""}
            try:
                ProductSpec.model_validate(row)
            except ValidationError as exc:
                for err in exc.errors():
                    field = str(err["loc"][0]) if err["loc"] else ""
                    problems.append(
                        Problem(file=shown, line=line, field=field, message=_message(err))
                    )
                continue
            sku = row["sku"]
            if sku in seen:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="sku",
                        message=f"duplicate SKU {sku!r} (first on line {seen[sku]})",
                    )
                )
                continue
            seen[sku] = line
            rows.append((line, row))
        if not rows and not problems:
            problems.append(Problem(file=shown, line=None, field="", message="no products"))
    if problems:
        raise problems_error(problems)
    return rows


def _message(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key (Extra inputs are not permitted): remove it or fix its spelling"
    message = err["msg"]
    return message.removeprefix("Value error, ")


def read_yaml_text(path: Path, what: str) -> str:
    """A spec file's text (``what``: how errors name it); unreadable or not UTF-8: one line."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{what} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 YAML"
        ) from None


def load_spec(path: Path | str) -> CampaignSpec:
    """Read and validate a campaign spec file (products CSV included)."""
    path = Path(path)
    shown = str(path)
    text = read_yaml_text(path, "campaign spec")
    data, marks = _compose(text, shown)
    if not isinstance(data, dict):
        raise problems_error(
            [Problem(file=shown, line=1, field="", message="a campaign spec is a YAML mapping")]
        )
    products = data.get("products")
    if isinstance(products, dict) and set(products) == {"csv"}:
        csv_path = Path(str(products["csv"])).expanduser()
        csv_path = csv_path if csv_path.is_absolute() else path.parent / csv_path
        if not csv_path.is_file():
            raise problems_error(
                [
                    Problem(
                        file=shown,
                        line=marks.get(("products", "csv")),
                        field="products.csv",
                        message=f"file {products['csv']} does not exist (looked at {csv_path})",
                    )
                ]
            )
        csv_shown = str(Path(shown).parent / str(products["csv"]))
        csv_rows = load_products_csv(csv_path, shown=csv_shown)
        data["products"] = [row for _, row in csv_rows]
        csv_lines = [line for line, _ in csv_rows]
    else:
        csv_shown, csv_lines = None, []
    try:
        return CampaignSpec.model_validate(data, context={"base": path.parent.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            ctx = err.get("ctx") or {}
            loc: Path_ = _parse_dotted(ctx["path"]) if "path" in ctx else tuple(err["loc"])
            if csv_shown and len(loc) >= 2 and loc[0] == "products" and isinstance(loc[1], int):
                # Problems with a CSV product point at its row in the CSV.
                field = _dotted(loc[2:])
                line = csv_lines[loc[1]]
                problems.append(
                    Problem(file=csv_shown, line=line, field=field, message=_message(err))
                )
                continue
            problems.append(
                Problem(
                    file=shown, line=_line(marks, loc), field=_dotted(loc), message=_message(err)
                )
            )
        raise problems_error(problems) from None


def load_users_csv(path: Path | str, spec: CampaignSpec) -> list[PersonalisationRequest]:
    """Personalisation requests from a CSV: user_id, sku and the campaign's user fields."""
    path = Path(path)
    shown = str(path)
    if spec.personalisation is None:
        raise InvalidInput(f"campaign {spec.name} has no personalisation section")
    allowed = ("user_id", "sku", *spec.personalisation.user_fields)
    skus = {p.sku for p in spec.products}
    problems: list[Problem] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    requests: list[PersonalisationRequest] = []
    with handle:
        reader = csv.DictReader(handle)
        header = _header(reader, shown)
        missing = [c for c in ("user_id", "sku") if c not in header]
        unknown = [c for c in header if c not in allowed]
        if missing or unknown:
            field = (missing or unknown)[0]
            what = (
                f"missing column(s) {', '.join(missing)}"
                if missing
                else f"unknown column(s) {', '.join(unknown)}"
            )
            raise problems_error(
                [
                    Problem(
                        file=shown, line=1, field=field, message=f"{what}: use {', '.join(allowed)}"
                    )
                ]
            )
        reader.fieldnames = header
        seen: dict[tuple[str, str], int] = {}
        previous_end = 1
        for raw in _records(reader, shown):
            line = previous_end + 1
            previous_end = reader.line_num
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(values.values()):
                continue
            fields = {k: v for k, v in values.items() if k not in ("user_id", "sku")}
            try:
                request = PersonalisationRequest(
                    user_id=values.get("user_id", ""), sku=values.get("sku", ""), fields=fields
                )
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(Problem(file=shown, line=line, field=field, message=_message(err)))
                continue
            if request.sku not in skus:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="sku",
                        message=f"unknown SKU {request.sku!r} in campaign {spec.name}",
                    )
                )
                continue
            key = (request.user_id, request.sku)
            if key in seen:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="user_id",
                        message=f"duplicate request for {key[0]} and {key[1]} (line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            requests.append(request)
    if not requests and not problems:
        problems.append(Problem(file=shown, line=None, field="", message="no users"))
    if problems:
        raise problems_error(problems)
    return requests
