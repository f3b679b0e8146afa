"""A dispatch model learnt from the city's own closed tickets.

Each closed ticket's final department (after returns, manual dispatch and
转派) is a label; what is learnt is the department's type (water, police,
sub-centre), so a county that had few tickets of a kind still gets them right:
the type maps to the ticket's district's unit as the lists map it. Character
n-grams of the folded text with a linear model (scikit-learn), saved with its
version as one file; the router consults it only where the rules and lists are
not sure (services.router.engine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from services.router.lists import SUB_CENTRE, resolve_target
from services.router.scoring import CompiledLists
from services.router.text import normalize
from services.router.verdict import TOP, Candidate
from shared.directory import Directory
from shared.domain import TicketDraft

FORMAT = "hotline-dispatch-model"
SOURCE = "model"


class ModelError(ValueError):
    """A model file that cannot be used, with the file named."""


@dataclass(frozen=True)
class DispatchModel:
    version: int
    trained_at: str
    tickets: int
    pipeline: Pipeline

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.pipeline.classes_]

    def predict(self, text: str) -> list[tuple[str, float]]:
        """The types, most probable first, with their probability."""
        probabilities = self.pipeline.predict_proba([normalize(text)])[0]
        ranked = sorted(zip(self.labels, probabilities, strict=True), key=lambda p: -p[1])
        return [(label, float(p)) for label, p in ranked]


def unit_type(department: str, directory: Directory) -> str | None:
    """A department's type: water for guanxian.water and city.water, sub-centre
    for a county's or zone's own centre; None for a unit not in the directory."""
    if directory.department(department) is None:
        return None
    if department in directory.districts:
        return SUB_CENTRE
    head, _, tail = department.partition(".")
    return tail if tail and (head == "city" or head in directory.districts) else None


def resolve_type(
    kind: str, district: str, directory: Directory, lists: CompiledLists | None
) -> str | None:
    """The unit a type maps to for a ticket's district, as the lists map it."""
    if lists is not None and kind in lists.names:
        return resolve_target(lists.targets[lists.names.index(kind)], district, directory)
    if kind == SUB_CENTRE:
        return district if directory.department(district) else None
    return resolve_target((f"{{district}}.{kind}", f"city.{kind}"), district, directory)


def train(texts: Sequence[str], labels: Sequence[str], version: int = 1) -> DispatchModel:
    """A model of the texts' types; needs at least two types."""
    if len(set(labels)) < 2:
        raise ValueError("training needs tickets of at least two department types")
    pipeline = Pipeline(
        [
            ("grams", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)),
            ("linear", LogisticRegression(C=20.0, max_iter=2000)),
        ]
    )
    pipeline.fit([normalize(t) for t in texts], list(labels))
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return DispatchModel(version, now, len(texts), pipeline)


def save_model(model: DispatchModel, path: Path) -> None:
    """Written beside and renamed over, so a reload never reads half a file."""
    data = {
        "format": FORMAT,
        "version": model.version,
        "trained_at": model.trained_at,
        "tickets": model.tickets,
        "pipeline": model.pipeline,
    }
    partial = path.with_name(path.name + ".partial")
    joblib.dump(data, partial)
    partial.replace(path)


def load_model(path: Path) -> DispatchModel:
    # The file is the city's own, written by `hotline dispatch train`; joblib
    # (pickle) runs what it holds, so the file must be trusted like the code.
    try:
        data: Any = joblib.load(path)
    except Exception as exc:  # any unreadable file: corrupt, truncated, not joblib
        raise ModelError(f"{path}: the dispatch model does not load: {exc!r}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: not a dispatch model written by `hotline dispatch train`")
    pipeline = data.get("pipeline")
    if not isinstance(pipeline, Pipeline) or not hasattr(pipeline, "classes_"):
        raise ModelError(f"{path}: the dispatch model holds no trained classifier")
    return DispatchModel(
        int(data["version"]), str(data["trained_at"]), int(data["tickets"]), pipeline
    )


def next_version(path: Path) -> int:
    """One more than the model already at path, 1 for the first."""
    if not path.exists():
        return 1
    try:
        return load_model(path).version + 1
    except ModelError:
        return 1


class ModelSuggester:
    name = SOURCE

    def __init__(
        self, model: DispatchModel, directory: Directory, lists: CompiledLists | None
    ) -> None:
        self.model = model
        self.directory = directory
        self.lists = lists

    def suggest(self, draft: TicketDraft) -> Sequence[Candidate]:
        found: list[Candidate] = []
        for kind, probability in self.model.predict(draft.text):
            department = resolve_type(kind, draft.district, self.directory, self.lists)
            if department is not None and all(c.department != department for c in found):
                found.append(Candidate(department, probability, SOURCE, kind))
            if len(found) == TOP:
                break
        return found
