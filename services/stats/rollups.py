"""The counters laid out so that any summary reads one small document per day.

Each document is keyed by a day and the values of up to two dimensions (LAYOUT)
and holds their totals (`t`): `2025-04-01|all`, `2025-04-01|district=guanxian`,
`2025-04-01|department=guanxian.water|district=guanxian`. Three of them also
break their totals down by the other dimensions (under `g`, nested in
DIMENSIONS order): a department and district's day by category and channel, a
department and category's day by channel, a district and category's day by
channel. Three and four filters read such a breakdown and sum the groups of the
values asked: department+district+channel reads `g.*.=wechat` of
`2025-04-01|department=city.env|district=guanxian`, all four filters one group
of it. The ranking's by-department groups are in `2025-04-01|by=department`.

So a summary over N days reads N documents by _id, whatever it filters on, the
largest a department and district's day broken down by category and channel;
an event adds to 12 documents (15 groups in them), and a batch's increments to
one document go out as one $inc. Fewer documents an event would mean larger
ones for one and two filters too, and the dev store decodes and rewrites a
whole document for every read and statement (docs/PERFORMANCE.md, "Stats").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from services.stats.measures import DIMENSIONS, Bucket

CITY = "all"
TOTALS = "t"
GROUPS = "g"
BY_DEPARTMENT = "by=department"
# The documents kept: the dimensions a document is keyed by (beside the day) ->
# those it breaks its totals down by. Every filter combination the API
# accepts has a document keyed by some of its dimensions that breaks down by
# the others (tests/unit/test_stats_measures.py).
LAYOUT: dict[tuple[str, ...], tuple[str, ...]] = {
    (): (),
    ("department",): (),
    ("district",): (),
    ("category",): (),
    ("channel",): (),
    ("department", "district"): ("category", "channel"),
    ("department", "category"): ("channel",),
    ("department", "channel"): (),
    ("district", "category"): ("channel",),
    ("district", "channel"): (),
    ("category", "channel"): (),
}


class Place(NamedTuple):
    """One document and the path of a counter group inside it; to read, `rest`
    selects groups below it level by level (a value's field, or None for every
    value), which are summed."""

    doc_id: str
    path: str
    rest: tuple[str | None, ...] = ()


def field(value: str) -> str:
    """A dimension value as a field name: never empty, no dot, no leading $."""
    escaped = value.replace("%", "%25").replace(".", "%2E").replace("|", "%7C")
    return "=" + escaped.replace("$", "%24")


def unfield(name: str) -> str:
    return name[1:].replace("%24", "$").replace("%7C", "|").replace("%2E", ".").replace("%25", "%")


def department_place(day: str, department: str | None = None) -> Place:
    """The ranking's groups of a day (all, or one department's)."""
    path = "s" if department is None else f"s.{field(department)}"
    return Place(f"{day}|{BY_DEPARTMENT}", path)


def doc_id(day: str, keyed: tuple[str, ...], values: dict[str, str]) -> str:
    return f"{day}|" + ("|".join(f"{d}={values[d]}" for d in keyed) or CITY)


def place_of(day: str, filters: dict[str, str]) -> Place:
    """Where the counters of one day under these filters are."""
    dims = tuple(dim for dim in DIMENSIONS if dim in filters)
    values = {dim: str(filters[dim]) for dim in dims}
    if dims in LAYOUT:
        return Place(doc_id(day, dims, values), TOTALS)
    keyed = _keyed_for(dims)
    pattern = [field(values[d]) if d in values else None for d in LAYOUT[keyed]]
    path = GROUPS
    while pattern and pattern[0] is not None:
        path += f".{pattern.pop(0)}"
    return Place(doc_id(day, keyed, values), path, tuple(pattern))


def _keyed_for(dims: tuple[str, ...]) -> tuple[str, ...]:
    """The document for these filters: keyed by the most of them, breaking
    down by the others."""
    fits = [k for k, subs in LAYOUT.items() if set(k) <= set(dims) <= {*k, *subs}]
    if not fits:
        raise ValueError(f"no roll-up holds the filters {dims}")
    return max(fits, key=len)


def places(bucket: Bucket) -> Iterator[Place]:
    """Every place a bucket's counts go: each document's totals, its breakdown
    group, and the ranking's."""
    values = {dim: str(getattr(bucket, dim)) for dim in DIMENSIONS}
    yield department_place(bucket.day, values["department"])
    for keyed, subs in LAYOUT.items():
        doc = doc_id(bucket.day, keyed, values)
        yield Place(doc, TOTALS)
        if subs:
            yield Place(doc, ".".join([GROUPS, *(field(values[d]) for d in subs)]))


class Increments:
    """A batch's increments, merged per document: one $inc each."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.about: dict[str, dict[str, str]] = {}

    def add(self, bucket: Bucket, counts: dict[str, float]) -> None:
        for place in places(bucket):
            target = self.docs[place.doc_id]
            for name, value in counts.items():
                if value:
                    target[f"{place.path}.{name}"] += value
            if place.doc_id not in self.about:
                self.about[place.doc_id] = _about(bucket, place.doc_id)


def _about(bucket: Bucket, doc: str) -> dict[str, str]:
    """What a new document records of itself beside its counters."""
    day, _, key = doc.partition("|")
    return {"day": day, "dim": key}


def read_path(doc: dict[str, Any] | None, path: str) -> dict[str, Any]:
    """The counter group at `path` of a document (empty when absent). Field
    names never contain a dot (field() escapes it): a path splits on dots."""
    node: Any = doc or {}
    for part in path.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def read_place(doc: dict[str, Any] | None, place: Place) -> dict[str, Any]:
    """The counters of a place: its group, or the sum of the groups `rest` selects."""
    found = _below(read_path(doc, place.path), place.rest)
    return found[0] if len(found) == 1 else add_groups(found)


def _below(node: dict[str, Any], rest: tuple[str | None, ...]) -> list[dict[str, Any]]:
    if not rest:
        return [node]
    keys = list(node) if rest[0] is None else [rest[0]]
    return [g for k in keys if isinstance(node.get(k), dict) for g in _below(node[k], rest[1:])]


def add_groups(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Counter groups summed, nested counters (the dispatch quality's) too."""
    total: dict[str, Any] = {}
    for group in groups:
        for name, value in group.items():
            if isinstance(value, dict):
                total[name] = add_groups([total.get(name) or {}, value])
            else:
                total[name] = total.get(name, 0) + value
    return total


def as_document(paths: dict[str, float]) -> dict[str, Any]:
    """The document a $inc of these dotted paths makes from nothing:
    {"t.received": 3} -> {"t": {"received": 3}} (roll-ups written whole: the
    bench's month, the tests' reading of a batch's increments)."""
    doc: dict[str, Any] = {}
    for path, value in paths.items():
        *parents, name = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = value
    return doc
