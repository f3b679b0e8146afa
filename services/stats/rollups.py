"""The counters laid out so that any summary reads one small document per day.

For no filter, each dimension and each pair of dimensions, one document per day
and value(s), holding the totals (`t`): `2025-04-01|all`,
`2025-04-01|district=guanxian`, `2025-04-01|department=guanxian.water|district=guanxian`.
For three and four filters, one document per day, value of the first filtered
dimension (in DIMENSIONS order) and combination of the others, holding one
group per value combination: `2025-04-01|department=city.env|district|category`
with `=guanxian|=complaint`. The ranking's by-department groups are in
`2025-04-01|by=department`.

So a summary over N days reads N documents by _id, whatever it filters on,
and those under two filters hold one group each. An event adds to 17
documents; a batch's increments to one document go out as one $inc.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import combinations
from typing import Any, NamedTuple

from services.stats.measures import DIMENSIONS, Bucket

CITY = "all"
TOTALS = "t"
BY_DEPARTMENT = "by=department"
EXACT = 2  # up to this many filters, a document of its own per value combination


class Place(NamedTuple):
    """One document and the path of a counter group inside it."""

    doc_id: str
    path: str


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


def place_of(day: str, filters: dict[str, str]) -> Place:
    """Where the counters of one day under these filters are."""
    dims = [dim for dim in DIMENSIONS if dim in filters]
    values = {dim: str(filters[dim]) for dim in dims}
    if not dims:
        return Place(f"{day}|{CITY}", TOTALS)
    if len(dims) <= EXACT:
        return Place(f"{day}|" + "|".join(f"{d}={values[d]}" for d in dims), TOTALS)
    first, rest = dims[0], dims[1:]
    doc = f"{day}|{first}={values[first]}|{'|'.join(rest)}"
    return Place(doc, "|".join(field(values[d]) for d in rest))


def places(bucket: Bucket) -> Iterator[Place]:
    """Every place a bucket's counts go: one per filter combination, and the
    ranking's."""
    values = {dim: str(getattr(bucket, dim)) for dim in DIMENSIONS}
    yield department_place(bucket.day, values["department"])
    for n in range(len(DIMENSIONS) + 1):
        for dims in combinations(DIMENSIONS, n):
            yield place_of(bucket.day, {d: values[d] for d in dims})


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
