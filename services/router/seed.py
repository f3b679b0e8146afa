"""The seed model: what a city knows on its first day, before it has history.

A linear classifier of the department type (character 1-3-grams, TF-IDF, a
linear support vector machine from scikit-learn) trained on the labelled
requests shipped with the reference city (lists/liaocheng-examples.jsonl) and
on every matter term of the responsibility lists (each term a tiny request of
its type), so an edit of the lists reaches it too. It is built from those files
when the engine is built (well under a second) and kept for the process while
they do not change: no binary file of unknown origin ships with the product.

The router asks it where the lists are not sure (services.router.engine):
measured on requests nobody had tuned on, the lists' confident decisions were
right about as often as the model, and the model's type was right far more
often than the lists' close calls (docs/DISPATCH.md, "The seed model").

The trained weights are copied out of scikit-learn: scoring one request is one
pass of an Aho-Corasick automaton over its folded text for the n-grams and one
gather-and-sum of their weights (tens of microseconds), where the pipeline's
own predict takes about ten times that.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from services.router.backtest import read_tickets
from services.router.boilerplate import CUT, NO_BOILERPLATE, Boilerplate
from services.router.lists import ListSet
from services.router.scoring import CompiledLists
from services.router.text import normalize
from services.router.training import Example, examples_from_tickets
from services.router.verdict import TOP, Candidate, ListVerdict
from shared.directory import Directory

SHIPPED_EXAMPLES = Path(__file__).parent / "lists" / "liaocheng-examples.jsonl"
GRAMS = (1, 3)
# Decision values are margins, not probabilities; a softmax at this sharpness
# turns them into shares that sum to one, for the queue and the threshold.
SHARPNESS = 3.0
SOURCE = "seed"
ZONE = "development zone"  # a district kind of the directory
# The requests (or terms) an n-gram of this length must be seen in to be kept.
MIN_SEEN = {1: 1, 2: 2, 3: 3}


@dataclass(frozen=True)
class SeedModel:
    labels: tuple[str, ...]
    grams: ahocorasick.Automaton  # each n-gram of the vocabulary -> its row
    idf_squared: list[float]  # per row
    weights: np.ndarray  # rows x labels, times the n-gram's idf
    intercept: np.ndarray  # per label, times SHARPNESS
    examples: int  # labelled requests it learnt from (the terms not counted)
    # Rows below this are single characters; the longer n-grams follow.
    unigrams: int
    # The work-order template's phrases, cut out of the text it learnt from
    # and of every text it is asked about.
    boilerplate: Boilerplate = NO_BOILERPLATE

    def predict(self, folded: str, top: int = 3) -> list[tuple[str, float]]:
        """The top types, most likely first, with their share, for folded text."""
        shares = self.shares(folded)
        order = np.argsort(-shares)[:top]
        return [(self.labels[i], float(shares[i])) for i in order]

    def shares(self, folded: str) -> np.ndarray:
        """Each label's share (they sum to one), for folded text."""
        folded = self.boilerplate.mask(folded)
        # Presence, not counts (binary TF-IDF): each distinct n-gram once. The
        # automaton finds them in C, without a string made for each; none spans
        # a cut template phrase, as none did in training.
        rows = list({row for _, row in self.grams.iter(folded)}) if folded else []
        # Single characters alone name no matter (急 of 求助，急 is no 急诊): with
        # no longer n-gram known, every label is as likely as the next.
        if not rows or max(rows) < self.unigrams:
            return np.full(len(self.labels), 1 / len(self.labels))
        # The weights hold the n-grams' idf already; the row is divided by its
        # length (l2), as the vectorizer does.
        length = math.sqrt(sum(map(self.idf_squared.__getitem__, rows)))
        scores = self.weights.take(rows, axis=0).sum(axis=0)
        # Margins stay within a few units: exp cannot overflow without the max
        # taken off first.
        exp = np.exp(scores * (SHARPNESS / length) + self.intercept)
        return np.asarray(exp / exp.sum())


def list_terms(lists: ListSet) -> list[Example]:
    """Every matter term of the lists (not the context words: 小区 is no
    housing matter) as a request of its type; pinyin aliases are the lists'
    own business."""
    context = lists.decision.context_weight
    return [
        Example(term, name)
        for name, spec in lists.types.items()
        for weight, words in spec.terms.items()
        if weight > context
        for term in map(normalize, words)
        if term and not term.isascii()
    ]


def char_grams(masked: str) -> list[str]:
    """The character 1-3-grams of masked folded text, none across a cut."""
    low, high = GRAMS
    return [
        part[i : i + n]
        for part in masked.split(CUT)
        for n in range(low, high + 1)
        for i in range(len(part) - n + 1)
    ]


def train_seed(
    examples: Sequence[Example],
    terms: Sequence[Example],
    boilerplate: Boilerplate = NO_BOILERPLATE,
) -> SeedModel:
    """Learn the types of the examples and the lists' terms (deterministic),
    from their text without the work-order template."""
    everything = [*examples, *terms]
    if len({e.label for e in everything}) < 2:
        raise ValueError("the seed model needs at least two department types")
    grams = TfidfVectorizer(analyzer=char_grams, binary=True)
    matrix = grams.fit_transform([boilerplate.mask(normalize(e.text)) for e in everything])
    linear = LinearSVC(C=1.0, random_state=0).fit(matrix, [e.label for e in everything])
    labels = tuple(str(label) for label in linear.classes_)
    coef, intercept = linear.coef_, linear.intercept_
    if len(labels) == 2:  # a binary SVM keeps one row: the second label's side
        coef, intercept = np.vstack([-coef, coef]), np.array([-intercept[0], intercept[0]])
    # Longer n-grams seen in very few requests are dropped: they are a
    # request's own wording more than a matter's, and the smaller table (a
    # third of the n-grams) stays in the processor's cache beside the lists.
    seen = np.asarray((matrix > 0).sum(axis=0)).ravel()
    names = grams.get_feature_names_out()
    kept = sorted(
        (i for i, name in enumerate(names) if seen[i] >= MIN_SEEN[len(name)]),
        key=lambda i: len(names[i]),
    )
    automaton = ahocorasick.Automaton()
    for row, i in enumerate(kept):
        automaton.add_word(str(names[i]), row)
    automaton.make_automaton()
    return SeedModel(
        labels,
        automaton,
        [float(grams.idf_[i]) ** 2 for i in kept],
        np.ascontiguousarray(coef.T[kept] * grams.idf_[kept, None], dtype=np.float32),
        np.asarray(intercept * SHARPNESS, dtype=np.float32),
        len(examples),
        sum(len(names[i]) == 1 for i in kept),
        boilerplate,
    )


def read_examples(path: Path, directory: Directory) -> list[Example]:
    """The labelled requests of a file in the sample format; those in a
    development zone teach nothing (the zone takes them by rule, whatever they
    are about)."""
    tickets, skipped = read_tickets(path, directory)
    if skipped:  # a file the seed would quietly learn less from
        raise ValueError(
            "; ".join(skipped[:3]) + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else "")
        )
    zones = {d.id for d in directory.districts.values() if d.kind == ZONE}
    return examples_from_tickets((t for t in tickets if t.draft.district not in zones), directory)


def seed_model(path: Path, lists: ListSet, directory: Directory) -> SeedModel:
    """The seed model of an examples file and the lists, trained once per
    process for each content of the two and each directory (a reload of
    unchanged files, and the many engines of a test run, reuse it)."""
    # The directory decides what a label is and which districts are zones.
    units = sorted(directory.departments) + sorted(
        f"{d.id}:{d.kind}" for d in directory.districts.values()
    )
    digest = hashlib.sha256(path.read_bytes())
    digest.update(lists.model_dump_json().encode())
    digest.update("\n".join(units).encode())
    key = digest.hexdigest()
    model = _TRAINED.get(key)
    if model is None:
        model = train_seed(
            read_examples(path, directory), list_terms(lists), Boilerplate(lists.boilerplate)
        )
        if len(_TRAINED) >= _KEEP:
            _TRAINED.pop(next(iter(_TRAINED)))
        _TRAINED[key] = model
    return model


_KEEP = 4  # models kept: the live one, and a few others for tests and reloads
_TRAINED: dict[str, SeedModel] = {}


@dataclass(frozen=True)
class SeedAdvisor:
    """The seed model as the engine consults it: whether the lists are sure
    enough to go without it, and its candidates, each type mapped to the
    ticket's district's unit as the lists map it."""

    model: SeedModel
    lists: CompiledLists
    directory: Directory
    # The lists decide alone when their best type leads the next (or nothing,
    # when it is alone) by this much; closer calls go to the model.
    margin: float = 7.0
    # The model decides from this share on; below, the lists' own verdict or a person.
    min_share: float = 0.2

    def sure(self, ranked: Sequence[Candidate]) -> bool:
        second = ranked[1].score if len(ranked) > 1 else 0.0
        return bool(ranked) and ranked[0].score - second >= self.margin

    def candidates(
        self, folded: str, found: Collection[str], verdict: ListVerdict, excluded: Collection[str]
    ) -> list[Candidate]:
        """The model's best three departments for the ticket, best first;
        none in a development zone, whose own administration takes everything
        there and says where else a ticket it returns belongs (the model learnt
        no zone's habits)."""
        district = self.directory.district(verdict.district)
        if district is None or district.kind == ZONE:
            return []
        lists, labels = self.lists, self.model.labels
        shares = self.model.shares(folded)
        values = shares.tolist()
        ranked: list[Candidate] = []
        seen: list[str] = []
        for i in np.argsort(shares)[::-1][: TOP + 1].tolist():
            index = lists.index.get(labels[i])
            if index is None:
                continue  # a type the city's lists do not have
            city = lists.city_unit(index, found, verdict.city_wide)
            department = lists.unit(index, verdict.district, city, self.directory)
            if department is None or department in excluded or department in seen:
                continue
            seen.append(department)
            ranked.append(Candidate(department, values[i], SOURCE, labels[i]))
        return ranked[:TOP]
