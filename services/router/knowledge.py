"""Everything the router decides with, loaded and checked together: the rules
file, the responsibility lists, the trained model and the suggester plugins.

The router builds its engine through an EngineFactory, so a reload (a changed
file, SIGHUP) re-reads the lists and the model with the rules and keeps the
last good engine when any of them is bad (services.router.reload).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from services.router.engine import RuleEngine
from services.router.lists import SHIPPED_LISTS, check_lists_file
from services.router.model import ModelError, ModelSuggester, load_model
from services.router.rules import RulesError, RuleSet, load_rules
from services.router.scoring import CompiledLists
from services.router.seed import SHIPPED_EXAMPLES, SeedAdvisor, seed_model
from services.router.verdict import Suggester
from shared.directory import Directory
from shared.settings import RouterSettings
from shared.workcalendar import WorkCalendar

logger = logging.getLogger(__name__)

SUGGESTERS_GROUP = "hotline.dispatch_suggesters"


@dataclass
class EngineFactory:
    """Builds a RuleEngine for a ruleset with the lists and the model read
    afresh; raises RulesError with every problem of those files."""

    directory: Directory
    calendar: WorkCalendar
    lists_file: Path | None = SHIPPED_LISTS
    model_file: Path | None = None
    min_probability: float = 0.6
    plugins: bool = True
    # The labelled requests the seed model learns from; None: no seed model.
    seed_file: Path | None = SHIPPED_EXAMPLES
    seed_margin: float = 7.0
    seed_min_share: float = 0.2

    @classmethod
    def of(
        cls, settings: RouterSettings, directory: Directory, calendar: WorkCalendar
    ) -> EngineFactory:
        return cls(
            directory,
            calendar,
            (settings.lists_file or SHIPPED_LISTS) if settings.dispatch_lists else None,
            settings.dispatch_model_file,
            settings.dispatch_min_probability,
            seed_file=(settings.dispatch_seed_file or SHIPPED_EXAMPLES)
            if settings.dispatch_seed
            else None,
            seed_margin=settings.dispatch_seed_margin,
            seed_min_share=settings.dispatch_seed_min_share,
        )

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files besides the rules whose change means a reload."""
        files = (self.lists_file, self.model_file, self.seed_file)
        return tuple(p for p in files if p is not None)

    def __call__(self, ruleset: RuleSet) -> RuleEngine:
        lists, problems = self.load_lists()
        suggesters, more = self.load_suggesters(lists)
        seed, most = self.load_seed(lists)
        if problems or more or most:
            raise RulesError(problems + more + most)
        return RuleEngine(
            ruleset,
            self.directory,
            self.calendar,
            lists=lists,
            suggesters=tuple(suggesters),
            min_probability=self.min_probability,
            seed=seed,
        )

    def load_seed(self, lists: CompiledLists | None) -> tuple[SeedAdvisor | None, list[str]]:
        """The seed model of the examples and the lists (none without lists)."""
        if self.seed_file is None or lists is None:
            return None, []
        try:
            model = seed_model(self.seed_file, lists.lists, self.directory)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return None, [f"{self.seed_file}: the seed model's examples do not load: {exc}"]
        advisor = SeedAdvisor(model, lists, self.directory, self.seed_margin, self.seed_min_share)
        return advisor, []

    def load_lists(self) -> tuple[CompiledLists | None, list[str]]:
        if self.lists_file is None:
            return None, []
        lists, problems = check_lists_file(self.lists_file, self.directory)
        if lists is None:
            return None, problems
        return CompiledLists(lists, place_names(self.directory)), []

    def load_suggesters(self, lists: CompiledLists | None) -> tuple[list[Suggester], list[str]]:
        found: list[Suggester] = []
        problems: list[str] = []
        if self.model_file is not None and not self.model_file.exists():
            logger.info("no dispatch model at %s yet: dispatching without", self.model_file)
        elif self.model_file is not None:
            try:
                model = load_model(self.model_file)
            except ModelError as exc:
                problems.append(str(exc))
            else:
                found.append(ModelSuggester(model, self.directory, lists))
        if self.plugins:
            found += plugin_suggesters(self.directory)
        return found, problems


def place_names(directory: Directory) -> set[str]:
    """The names of the districts and towns, with and without their suffix
    (东古城镇 and 东古城, 临清市 and 临清), which no list term may straddle."""
    names = set()
    for district in directory.districts.values():
        for name in (district.name, *district.towns):
            names.add(name)
            for suffix in ("街道", "镇", "乡", "市", "区", "县"):
                short = name.removesuffix(suffix)
                if short != name and len(short) >= 2:
                    names.add(short)
    return names


def plugin_suggesters(directory: Directory) -> list[Suggester]:
    """The suggesters installed packages declare in the entry point group
    hotline.dispatch_suggesters: each names a callable taking the directory and
    returning a suggester (a city's own model service, say). One that fails to
    load is logged and left out; the others still run."""
    found: list[Suggester] = []
    for point in entry_points(group=SUGGESTERS_GROUP):
        try:
            found.append(point.load()(directory))
        except Exception:  # a broken plugin must not stop dispatching
            logger.exception("dispatch suggester %s failed to load", point.name)
    return found


def shipped_engine(directory: Directory, calendar: WorkCalendar) -> RuleEngine:
    """The reference city's rules and lists, without a model or plugins."""
    return EngineFactory(directory, calendar, plugins=False)(load_rules())
