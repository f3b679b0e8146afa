"""The `hotline` console script: one subcommand per service plus operator tools."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence

# Subcommand -> "module:function". Modules are imported only when their command
# runs, so `hotline rules check` does not pay for the service stacks.
SERVICES = {
    "intake": "services.intake.main:run",
    "router": "services.router.main:run",
    "notifier": "services.notifier.main:run",
    "stats": "services.stats.main:run",
    "workbench": "services.workbench.main:run",
}


def _load(target: str) -> Callable[..., int]:
    module_name, func_name = target.split(":")
    func: Callable[..., int] = getattr(importlib.import_module(module_name), func_name)
    return func


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 citizen hotline")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SERVICES:
        service = sub.add_parser(name, help=f"run the {name} service")
        if name == "stats":
            service.add_argument(
                "action",
                nargs="?",
                choices=["rebuild"],
                help="rebuild: recompute every aggregate from the event archive, then exit",
            )

    rules = sub.add_parser("rules", help="check and explain dispatch rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    for cmd, text in (
        ("check", "validate a rules file"),
        ("explain", "print the dispatch decision for one ticket JSON read on stdin"),
    ):
        p = rules_sub.add_parser(cmd, help=text)
        p.add_argument("file", nargs="?", default=None, help="rules file (default: shipped)")
    diff = rules_sub.add_parser("diff", help="replay tickets through two rules files")
    diff.add_argument("old", help="the rules file in force")
    diff.add_argument("new", help="the proposed rules file")
    diff.add_argument(
        "--tickets", default=None, help="JSON-lines tickets (default: the sample requests)"
    )

    dispatch = sub.add_parser("dispatch", help="measure and train the dispatch knowledge")
    dispatch_sub = dispatch.add_subparsers(dest="dispatch_command", required=True)
    evaluate = dispatch_sub.add_parser(
        "evaluate", help="accuracy, manual share and confusions on requests with known answers"
    )
    evaluate.add_argument("file", help="JSON lines with expected_department")
    evaluate.add_argument(
        "--misses",
        action="store_true",
        help="also print each miss: id, decided by, sent to, right unit, text (phones masked)",
    )
    train = dispatch_sub.add_parser("train", help="train the dispatch model on closed tickets")
    train.add_argument(
        "--history", default=None, help="a JSON-lines history instead of the router's store"
    )
    train.add_argument(
        "--out", default=None, help="model file (default: HOTLINE_DISPATCH_MODEL_FILE)"
    )

    keys = sub.add_parser("keys", help="issue, list and revoke API keys (every service)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    issue = keys_sub.add_parser("issue", help="issue a key (printed once)")
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--staff", help="a hotline staff member's id: reads and acts on everything")
    who.add_argument("--department", help="a unit id of the directory: its own tickets")
    who.add_argument("--agent", help="a call-centre seat: takes calls, reads its callers' tickets")
    who.add_argument("--channel", help="an intake channel (web, sms, open311, ...): submits only")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its key id")
    revoke.add_argument("key_id")
    keys_sub.add_parser("list", help="list keys (ids and owners, never the keys)")

    demo = sub.add_parser("demo", help="post the reference city's sample requests")
    demo.add_argument("--intake", default="http://127.0.0.1:8001")
    demo.add_argument("--stats", default="http://127.0.0.1:8004")
    demo.add_argument("--timeout", type=float, default=60.0)
    return parser


def _use_uvloop() -> None:
    """A service is mostly socket events (HTTP, AMQP, the store): libuv's event
    loop spends a fraction of the CPU asyncio's pure-Python loop spends on each
    (docs/PERFORMANCE.md, issue #14's third round). asyncio.run() takes the
    loop from the policy."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stats" and args.action == "rebuild":
        return _load("services.stats.cli:rebuild")()
    if args.command in SERVICES:
        _use_uvloop()
        return _load(SERVICES[args.command])()
    if args.command == "rules" and args.rules_command == "diff":
        return _load("services.router.cli:diff")(args.old, args.new, args.tickets)
    if args.command == "rules":
        return _load(f"services.router.cli:{args.rules_command}")(args.file)
    if args.command == "dispatch" and args.dispatch_command == "evaluate":
        return _load("services.router.dispatch_cli:evaluate")(args.file, args.misses)
    if args.command == "dispatch":
        return _load("services.router.dispatch_cli:train")(args.history, args.out)
    if args.command == "keys":
        return _load("services.keys_cli:main")(args)
    if args.command == "demo":
        return _load("services.demo:run")(args.intake, args.stats, args.timeout)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
