"""Reloading the rules while the router runs: on a change of the file or on SIGHUP.

A new file is checked whole first (YAML, schema, references, the directory);
only a file without a problem replaces the live engine, in one assignment, so a
decision uses either the old rules or the new ones, never a mix. An invalid file
leaves the old rules running, its problems in the log and the metrics below.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter, Gauge
from watchfiles import awatch

from services.router.checks import check_file
from services.router.engine import RuleEngine
from services.router.rules import SHIPPED_RULES, RulesError, RuleSet
from shared.directory import Directory
from shared.waiting import wait_event

logger = logging.getLogger(__name__)

RULES_VALID = Gauge(
    "hotline_router_rules_valid",
    "1 when the rules file last read was valid; 0 while an invalid one waits (old rules run)",
)
RULES_RELOADS = Counter(
    "hotline_router_rules_reloads",
    "Reloads of the rules file, by outcome (ok, invalid)",
    ["outcome"],
)
RULES_LOADED_AT = Gauge(
    "hotline_router_rules_loaded_timestamp_seconds",
    "Unix time at which the rules running now were loaded",
)

BuildEngine = Callable[[RuleSet], RuleEngine]
RETRY_S = 5.0  # before watching again after the watch failed

# One reload at a time: each reads the file afresh, so the last to run has the
# newest text, whatever order a burst of signals and file events came in.
_reloading = threading.Lock()


class HasEngine(Protocol):
    """Holds the live rule engine (the router's EngineHolder)."""

    engine: RuleEngine


def load_engine(path: Path | None, build_engine: BuildEngine, directory: Directory) -> RuleEngine:
    """The engine for the start of the service; an invalid file raises RulesError
    with every problem, since there are no old rules to keep."""
    path = path or SHIPPED_RULES
    ruleset, problems = check_file(path, directory)
    if ruleset is None:
        RULES_VALID.set(0)
        raise RulesError(problems)
    engine = build_engine(ruleset)  # RulesError for bad lists or a bad model
    RULES_VALID.set(1)
    RULES_LOADED_AT.set_to_current_time()
    logger.info("rules loaded: %d rules from %s", len(ruleset.rules), path)
    return engine


def reload_rules(
    path: Path | None, holder: HasEngine, build_engine: BuildEngine, directory: Directory
) -> bool:
    """Swap in the file's rules if they are valid; True when swapped."""
    path = path or SHIPPED_RULES
    with _reloading:
        ruleset, problems = check_file(path, directory)
        engine = None
        if ruleset is not None:
            try:
                engine = build_engine(ruleset)
            except RulesError as exc:  # the lists or the model are bad
                problems = exc.problems
            except Exception:  # a reload must never take the live rules down with it
                logger.exception("rules reload: building the engine failed")
        if engine is None:
            for problem in problems:
                logger.error("rules reload refused, old rules kept: %s", problem)
            RULES_VALID.set(0)
            RULES_RELOADS.labels(outcome="invalid").inc()
            return False
        holder.engine = engine
        RULES_VALID.set(1)
        RULES_RELOADS.labels(outcome="ok").inc()
        RULES_LOADED_AT.set_to_current_time()
    logger.info("rules reloaded: %d rules from %s", len(engine.ruleset.rules), path)
    return True


def _fingerprints(paths: tuple[Path, ...]) -> str | None:
    """One digest of the files' contents; None while the rules file (the first)
    is missing, as between a delete and a write. A missing model is a state of
    its own: the first training writes it."""
    digest = hashlib.sha256()
    for i, path in enumerate(paths):
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            if i == 0:
                return None
            digest.update(b"absent")
    return digest.hexdigest()


async def watch_rules(
    path: Path | None,
    holder: HasEngine,
    build_engine: BuildEngine,
    directory: Directory,
    *,
    debounce_ms: int = 1600,
) -> None:
    """Reload whenever the content of the file, or of another the engine is
    built from (the lists, the model: build_engine.paths), changes; runs until
    cancelled.

    The directories are watched, not the files: editors and Kubernetes config maps
    replace a file by renaming another over it, which a watch on the old file
    would never see. Events that leave the content as it was are ignored."""
    # Not resolved: a config map's file is a link to a folder that is replaced
    # on each update, while the link's own folder stays.
    targets = (path or SHIPPED_RULES, *getattr(build_engine, "paths", ()))
    watch = _Watch(tuple(p.absolute() for p in targets), holder, build_engine, directory)
    task = asyncio.create_task(watch.run(debounce_ms))
    try:
        # Shielded: the watch thread only notices `stop`, not a cancellation,
        # so stop it first, then let it finish (within one 50 ms step).
        await asyncio.shield(task)
    finally:
        watch.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class _Watch:
    targets: tuple[Path, ...]  # the rules file first
    holder: HasEngine
    build_engine: BuildEngine
    directory: Directory
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Unknown at first: the file may have changed since the engine was built,
    # so the first event reloads whatever the content.
    seen: str | None = None

    async def run(self, debounce_ms: int) -> None:
        logger.info("watching %s for changes", ", ".join(map(str, self.targets)))
        folders = sorted({target.parent for target in self.targets})
        while not self.stop.is_set():
            try:
                async for _ in awatch(
                    *folders, stop_event=self.stop, debounce=debounce_ms, recursive=False
                ):
                    await self.changed()
            except Exception:  # a failed watch must not end reloading for good
                logger.exception("watching %s failed; again in %g s", folders, RETRY_S)
                await wait_event(self.stop, RETRY_S)

    async def changed(self) -> None:
        current = await asyncio.to_thread(_fingerprints, self.targets)
        if current == self.seen or current is None:
            return  # unchanged (another file of the folder), or between a delete and a write
        self.seen = current
        args = (self.targets[0], self.holder, self.build_engine, self.directory)
        await asyncio.to_thread(reload_rules, *args)


def install_sighup(
    loop: asyncio.AbstractEventLoop,
    path: Path | None,
    holder: HasEngine,
    build_engine: BuildEngine,
    directory: Directory,
) -> None:
    """`kill -HUP <router>` reloads the rules (checked first, like a file change)."""
    pending: set[asyncio.Future[bool]] = set()  # keeps running reloads referenced

    def on_sighup() -> None:
        logger.info("SIGHUP: reloading the rules")
        future = loop.run_in_executor(None, reload_rules, path, holder, build_engine, directory)
        pending.add(future)
        future.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
