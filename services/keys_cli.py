"""`hotline keys issue|revoke|list`: API keys of departments and staff (router) and
of intake channels and staff (intake). Each service keeps its keys in its own database."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.directory import load_directory
from shared.events import utcnow
from shared.keys import ApiKeyStore
from shared.mongo import create_client, service_database
from shared.settings import CommonSettings


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


def _service(args: argparse.Namespace) -> str:
    if getattr(args, "channel", None):
        return "intake"
    return str(args.service or "router")


async def _main(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    client = create_client(settings)
    try:
        keys = ApiKeyStore(service_database(client, settings, _service(args)))
        await keys.ensure_indexes()
        if args.keys_command == "issue":
            return await _issue(keys, settings, args)
        if args.keys_command == "revoke":
            if await keys.revoke(args.key_id, utcnow()):
                print(f"revoked {args.key_id}")
                return 0
            print(f"error: no active key {args.key_id}", file=sys.stderr)
            return 1
        for doc in await keys.list():
            state = "revoked" if doc.get("revoked_at") else "active"
            print(f"{doc['key_id']}  {doc['kind']:10} {doc['principal']:24} {state}")
        return 0
    finally:
        await client.close()


def _owner(settings: CommonSettings, args: argparse.Namespace) -> tuple[str, str] | str:
    """(kind, id) of the new key's owner, or an error message."""
    if args.department:
        directory = load_directory(settings.districts_file, settings.directory_file)
        if directory.department(args.department) is None:
            return f"no department {args.department!r}"
        return ("department", args.department)
    if args.channel:
        from services.intake.channels import channel_names

        if args.channel not in channel_names():
            return f"no intake channel {args.channel!r} (known: {', '.join(channel_names())})"
        return ("channel", args.channel)
    return ("staff", args.staff)


async def _issue(keys: ApiKeyStore, settings: CommonSettings, args: argparse.Namespace) -> int:
    owner = _owner(settings, args)
    if isinstance(owner, str):
        print(f"error: {owner}", file=sys.stderr)
        return 1
    key_id, key = await keys.issue(*owner, utcnow())
    print(f"key id: {key_id}\nkey:    {key}\n(the key is shown once; keep it secret)")
    return 0
