"""The lineage graph of an asset laid out left to right, for a server-side SVG:
prompt -> enhanced prompt -> generation (model, seed) -> brand kit -> renditions -> published."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from db.lineage import LineageNode

COLUMNS = {
    "prompt": 0, "overlay_text": 0,
    "enhanced_prompt": 1,
    "model_checkpoint": 2, "latents": 2, "raw_clip": 2, "frame_sample": 2,
    "lut": 3, "logo": 3, "music": 3, "overlay_image": 3,  # drawn under generation
    "rendition": 4, "thumbnail": 4, "preview": 4,
}  # fmt: skip
TITLES = ("prompt", "enhanced prompt", "generation, brand kit", "", "renditions", "published")
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 64, 60, 22, 30


@dataclass
class Box:
    id: str
    kind: str
    lines: list[str]
    href: str
    column: int
    x: int = 0
    y: int = 0
    root: bool = False
    published: bool = False


@dataclass
class Graph:
    width: int
    height: int
    boxes: list[Box]
    edges: list[dict[str, Any]] = field(default_factory=list)
    titles: list[dict[str, Any]] = field(default_factory=list)


def _short(text: str | None, n: int = 26) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def layout(
    root: uuid.UUID,
    nodes: list[LineageNode],
    params: dict[uuid.UUID, dict[str, Any]],
    href: Any,
) -> Graph:
    boxes: dict[str, Box] = {}
    for node in nodes:
        key = str(node.asset_id)
        if key in boxes:
            continue
        lines = [node.kind.replace("_", " ")]
        if node.stage:
            lines.append(f"by {node.stage}")
        p = params.get(node.activity_id) if node.activity_id else None
        if node.kind == "raw_clip":
            lines.append(_short(f"model {node.model_version or '?'}"))
            if p and "seed" in p:
                lines.append(f"seed {p['seed']}")
        elif node.model_version:
            lines.append(_short(node.model_version))
        if node.kind == "rendition" and p:
            bits = [f"{k} {p[k]}" for k in ("aspect", "lut") if p.get(k)]
            if bits:
                lines.append(_short(", ".join(bits)))
        lines.append(key[:8])
        boxes[key] = Box(
            id=key,
            kind=node.kind,
            lines=lines[:4],
            href=href(node.asset_id),
            column=min(COLUMNS.get(node.kind, 2), 2)
            if COLUMNS.get(node.kind, 2) == 3
            else COLUMNS.get(node.kind, 2),
            root=node.asset_id == root,
            published=node.published_uri is not None,
        )
    edges = []
    seen = set()
    for node in nodes:
        if node.child_id is None:
            continue
        pair = (str(node.asset_id), str(node.child_id))
        if pair in seen or pair[1] not in boxes:
            continue
        seen.add(pair)
        edges.append({"from": pair[0], "to": pair[1], "role": node.role or ""})
    for box in list(boxes.values()):
        if box.published:
            pub = Box(
                id=f"pub-{box.id}",
                kind="published",
                lines=["published object", "public bucket", box.id[:8]],
                href=box.href,
                column=5,
            )
            boxes[pub.id] = pub
            edges.append({"from": box.id, "to": pub.id, "role": "publish"})
    used_columns = sorted({b.column for b in boxes.values()})
    x_of = {c: PAD + i * (NODE_W + GAP_X) for i, c in enumerate(used_columns)}
    rows: dict[int, int] = {}
    for box in sorted(boxes.values(), key=lambda b: (b.column, b.kind, b.id)):
        row = rows.get(box.column, 0)
        rows[box.column] = row + 1
        box.x, box.y = x_of[box.column], PAD + 24 + row * (NODE_H + GAP_Y)
    by_id = boxes
    drawn = []
    for edge in edges:
        a, b = by_id[edge["from"]], by_id[edge["to"]]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        if b.x <= a.x:  # same column or backwards: route from below
            x1, y1, x2, y2 = a.x + NODE_W // 2, a.y + NODE_H, b.x + NODE_W // 2, b.y
        drawn.append({**edge, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                      "mx": (x1 + x2) // 2, "my": (y1 + y2) // 2 - 4})  # fmt: skip
    width = PAD * 2 + len(used_columns) * (NODE_W + GAP_X)
    height = PAD * 2 + 24 + max(rows.values() or [1]) * (NODE_H + GAP_Y)
    titles = [{"x": x_of[c], "text": TITLES[c] if c < len(TITLES) else ""} for c in used_columns]
    return Graph(width=width, height=height, boxes=list(boxes.values()), edges=drawn, titles=titles)
