"""The counters laid out so that any summary reads one document per day.

One document per day for the whole city (`2025-04-01|all`) and one per day and
dimension value (`2025-04-01|district=guanxian`). Each holds its own totals
(`t`) and breakdowns (`s`) by every combination of the dimensions after its own
in DIMENSIONS order: a department's document breaks down by district, category,
channel and each pair and the triple of them; a district's by category, channel
and both; a category's by channel. A filter is answered from the document of
its first dimension: department and district from `department=X`, under
`s.district.=Y`. The city's document breaks down by department for the ranking.

So a summary over N days reads N documents by _id, whatever it filters on; an
event adds to five documents (the city, and its department, district, category
and channel), and a batch's increments to one document go out as one $inc.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import combinations
from typing import Any, NamedTuple

from services.stats.measures import DIMENSIONS, Bucket

CITY = "all"
TOTALS = "t"
BY_DEPARTMENT = "s.department"  # in the city's document


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


def doc_id(day: str, dim: str | None = None, value: str = "") -> str:
    return f"{day}|{CITY}" if dim is None else f"{day}|{dim}={value}"


def breakdowns(dim: str) -> list[tuple[str, ...]]:
    """The dimension combinations a document of `dim` breaks down by."""
    rest = DIMENSIONS[DIMENSIONS.index(dim) + 1 :]
    return [combo for n in range(1, len(rest) + 1) for combo in combinations(rest, n)]


def sub_path(values: dict[str, str], combo: tuple[str, ...]) -> str:
    return f"s.{'|'.join(combo)}.{'|'.join(field(values[d]) for d in combo)}"


def places(bucket: Bucket) -> Iterator[Place]:
    """Every place a bucket's counts go."""
    values = {dim: str(getattr(bucket, dim)) for dim in DIMENSIONS}
    city = doc_id(bucket.day)
    yield Place(city, TOTALS)
    yield Place(city, f"{BY_DEPARTMENT}.{field(values['department'])}")
    for dim in DIMENSIONS:
        own = doc_id(bucket.day, dim, values[dim])
        yield Place(own, TOTALS)
        for combo in breakdowns(dim):
            yield Place(own, sub_path(values, combo))


def place_of(day: str, filters: dict[str, str]) -> Place:
    """Where the counters of one day under these filters are."""
    dims = [dim for dim in DIMENSIONS if dim in filters]
    if not dims:
        return Place(doc_id(day), TOTALS)
    values = {dim: str(filters[dim]) for dim in dims}
    first, rest = dims[0], tuple(dims[1:])
    own = doc_id(day, first, values[first])
    return Place(own, sub_path(values, rest) if rest else TOTALS)


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
    dim, _, _ = key.partition("=")
    if key == CITY:
        return {"day": day, "dim": CITY}
    return {"day": day, "dim": dim, "value": str(getattr(bucket, dim))}


def read_path(doc: dict[str, Any] | None, path: str) -> dict[str, Any]:
    """The counter group at `path` of a document (empty when absent). Field
    names never contain a dot (field() escapes it): a path splits on dots."""
    node: Any = doc or {}
    for part in path.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}
