"""Checks of a rules file against the directory, beyond its schema."""

from __future__ import annotations

from services.router.rules import Rule, RuleSet
from shared.directory import Directory


def check_ruleset(ruleset: RuleSet, directory: Directory) -> list[str]:
    problems: list[str] = []
    for index, rule in enumerate(ruleset.rules):
        where = f"rules[{index}] ({rule.id})"
        problems += [f"{where}: {p}" for p in _check_rule(rule, directory)]
        shadow = _shadowed_by(rule, ruleset.rules[:index])
        if shadow is not None:
            problems.append(f"{where}: unreachable, rule {shadow} above matches everything it does")
    return problems


def _check_rule(rule: Rule, directory: Directory) -> list[str]:
    problems = []
    for district in rule.when.districts:
        if directory.district(district) is None:
            problems.append(f"unknown district {district!r}")
    kinds = {d.kind for d in directory.districts.values()}
    for kind in rule.when.district_kinds:
        if kind not in kinds:
            problems.append(f"unknown district kind {kind!r} (known: {sorted(kinds)})")
    for template in (rule.then.department, *rule.then.co_departments):
        if not _resolvable(template, directory):
            problems.append(f"unknown department {template!r}")
    return problems


def _resolvable(template: str, directory: Directory) -> bool:
    if "{district}" not in template:
        return directory.department(template) is not None
    return any(
        directory.department(template.replace("{district}", d)) is not None
        for d in directory.districts
    )


def _shadowed_by(rule: Rule, earlier: tuple[Rule, ...]) -> str | None:
    """An earlier rule whose conditions are each no stricter than this one's."""
    for other in earlier:
        if _covers(other, rule):
            return other.id
    return None


def _covers(a: Rule, b: Rule) -> bool:
    wa, wb = a.when, b.when
    lists = ("districts", "district_kinds", "towns", "categories", "channels", "priorities")
    for name in lists:
        la, lb = getattr(wa, name), getattr(wb, name)
        if la and (not lb or not set(lb) <= set(la)):
            return False
    ka, kb = wa.keywords, wb.keywords
    if ka.all and not set(ka.all) <= set(kb.all):
        return False
    if ka.none and not set(ka.none) <= set(kb.none):
        return False
    # With words to find, a covers b only if every way b matches hits one of them.
    b_hits_a = bool(set(kb.all) & set(ka.any)) or bool(kb.any and set(kb.any) <= set(ka.any))
    if ka.any and not b_hits_a:
        return False
    # The department of a must exist wherever b would route, else a falls through.
    return "{district}" not in a.then.department
