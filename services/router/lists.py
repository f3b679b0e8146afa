"""Reading the departments' responsibility lists (权责清单): per department type,
the terms citizens use for its matters, weighted, with exclusions and the units
the type maps to. The file's format is described in lists/liaocheng.yaml.

Like a rules file, a list file with any problem is refused whole, each problem
at its line, so that `hotline rules check` and a reload can say what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.router.lines import (
    Document,
    Problem,
    format_problems,
    read_file,
)
from services.router.rules import parse_as
from services.router.text import normalize
from shared.directory import Directory

SHIPPED_LISTS = Path(__file__).parent / "lists" / "liaocheng.yaml"
SUB_CENTRE = "sub-centre"  # the county's (or zone's) own 12345 centre

Weight = Annotated[int, Field(ge=1, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionPolicy(_Strict):
    # The best type decides when it scores at least min_score and at least
    # margin more than the runner-up; else the ticket waits for a person.
    min_score: float = Field(default=3, gt=0)
    margin: float = Field(default=2, ge=0)
    # Terms weighing at most context_weight name a place or a party (小区, 老板,
    # 孩子), not a matter: together they add at most context_cap to a type, so
    # one specific phrase outweighs several of them.
    context_weight: int = Field(default=0, ge=0)
    context_cap: float = Field(default=1000, ge=0)
    # Each further matter term of a type counts this fraction of the one before
    # (1: plain sum), so a type named by many loose words does not beat one
    # named by a precise phrase.
    decay: float = Field(default=1, gt=0, le=1)
    # A matter term gains this for each character past two (up to four more):
    # a longer phrase names the matter more precisely than a word.
    length_bonus: int = Field(default=0, ge=0)


class TypeList(_Strict):
    name: str = ""
    target: tuple[str, ...] = Field(min_length=1)
    terms: dict[Weight, tuple[str, ...]] = Field(min_length=1)
    exclusions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Words that make the matter the city unit's (river courses are the city
    # water bureau's, supply is the county water group's).
    city_terms: tuple[str, ...] = ()


class ListSet(_Strict):
    version: int = 1
    decision: DecisionPolicy = Field(default_factory=DecisionPolicy)
    # Words that make a matter city-wide (全市, 各县): it goes to the city unit
    # of the type that wins, where the type has one.
    city_wide: tuple[str, ...] = ()
    # The phrases of the agents' work-order template (工单内容, 来电人称, 诉求):
    # how a request was taken, not what it is about. They count for no type,
    # no term inside or across one counts, and the seed model never sees them
    # (services.router.boilerplate).
    boilerplate: tuple[str, ...] = ()
    types: dict[str, TypeList] = Field(min_length=1)

    def size(self, name: str) -> int:
        return sum(len(terms) for terms in self.types[name].terms.values())


@dataclass
class ParsedLists:
    document: Document
    lists: ListSet | None = None
    problems: list[Problem] = field(default_factory=list)


def known_types(directory: Directory) -> set[str]:
    """The department types of a directory: the suffixes of its units' ids
    (water of guanxian.water and city.water), and the sub-centre."""
    types = {SUB_CENTRE}
    for dep_id in directory.departments:
        head, _, tail = dep_id.partition(".")
        if tail and (head == "city" or head in directory.districts):
            types.add(tail)
    return types


def resolve_target(
    templates: tuple[str, ...], district: str, directory: Directory, city: bool = False
) -> str | None:
    """The first unit of a type's target that exists for the ticket's district;
    with city, the first city unit if the type has one."""
    if city:
        templates = tuple(t for t in templates if "{district}" not in t) or templates
    for template in templates:
        dep_id = template.replace("{district}", district)
        if directory.department(dep_id) is not None:
            return dep_id
    return None


def read_lists(text: str, directory: Directory) -> ParsedLists:
    document, problems, lists = parse_as(text, ListSet)
    parsed = ParsedLists(document, problems=problems)
    if lists is None:
        return parsed
    parsed.problems += list_problems(lists, directory)
    if not parsed.problems:
        parsed.lists = lists
    return parsed


def check_lists_file(path: Path, directory: Directory) -> tuple[ListSet | None, list[str]]:
    """The lists if the file has no problem, else None and its problems as
    FILE:LINE: message."""
    text, problems = read_file(path, "lists file")
    if text is None:
        return None, problems
    parsed = read_lists(text, directory)
    if parsed.lists is None:
        return None, format_problems(str(path), parsed.document, parsed.problems)
    return parsed.lists, []


def list_problems(lists: ListSet, directory: Directory) -> list[Problem]:
    problems: list[Problem] = []
    known = known_types(directory)
    for name, spec in lists.types.items():
        where = ("types", name)
        if name not in known:
            message = f"unknown department type {name!r} (known: {', '.join(sorted(known))})"
            problems.append(Problem(where, message, show_path=True))
        for i, template in enumerate(spec.target):
            if not any(resolve_target((template,), d, directory) for d in directory.districts):
                message = f"target {template!r} is no unit of the directory"
                problems.append(Problem((*where, "target", i), message, show_path=True))
        problems += _term_problems(name, spec)
    return problems + _claimed_twice(lists) + _boilerplate_problems(lists)


def _boilerplate_problems(lists: ListSet) -> list[Problem]:
    """An empty phrase, or a type's term that holds a phrase of the template
    (it could never count: the template is cut out first)."""
    problems = []
    phrases: dict[str, int] = {}
    for i, phrase in enumerate(lists.boilerplate):
        folded = normalize(phrase)
        if not folded:
            message = f"boilerplate phrase {phrase!r} is empty without its spaces and punctuation"
            problems.append(Problem(("boilerplate", i), message, show_path=True))
        phrases.setdefault(folded, i)
    for name, spec in lists.types.items():
        for weight, words in spec.terms.items():
            for i, word in enumerate(words):
                term = normalize(word)
                inside = next((p for p in phrases if p and p in term), None)
                if inside is not None:
                    message = (
                        f"term {word!r} of {name} holds {inside!r}, a boilerplate phrase of"
                        " the work-order template: it would never count"
                    )
                    problems.append(
                        Problem(("types", name, "terms", weight, i), message, show_path=True)
                    )
    return problems


def _term_problems(name: str, spec: TypeList) -> list[Problem]:
    problems = []
    where = ("types", name)
    terms = {normalize(t) for words in spec.terms.values() for t in words}
    for weight, words in spec.terms.items():
        for i, word in enumerate(words):
            if not normalize(word):
                message = f"term {word!r} is empty without its spaces and punctuation"
                problems.append(Problem((*where, "terms", weight, i), message, show_path=True))
    for term, words in spec.exclusions.items():
        if normalize(term) not in terms:
            message = f"exclusion for {term!r}, which is no term of {name}"
            problems.append(Problem((*where, "exclusions", term), message, show_path=True))
        for i, word in enumerate(words):
            if not normalize(word):
                message = f"exclusion word {word!r} is empty without its spaces and punctuation"
                problems.append(Problem((*where, "exclusions", term, i), message, show_path=True))
    return problems


def _claimed_twice(lists: ListSet) -> list[Problem]:
    """A term two types claim with the same weight, neither excluding it in
    some context: the term could never tell them apart."""
    first: dict[tuple[str, int], tuple[str, int]] = {}
    problems = []
    for name, spec in lists.types.items():
        excluded = {normalize(t) for t in spec.exclusions}
        for weight, words in spec.terms.items():
            for i, word in enumerate(words):
                key = (normalize(word), weight)
                other = first.get(key)
                if other is None:
                    first[key] = (name, i)
                    continue
                other_excluded = {normalize(t) for t in lists.types[other[0]].exclusions}
                if key[0] not in excluded and key[0] not in other_excluded:
                    message = (
                        f"term {word!r} is claimed by {other[0]} with the same weight"
                        f" {weight} and no exclusion"
                    )
                    problems.append(
                        Problem(("types", name, "terms", weight, i), message, show_path=True)
                    )
    return problems
