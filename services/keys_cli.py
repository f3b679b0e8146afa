"""`hotline keys issue|revoke|list`: the API keys of every service, in the one key
store (shared.keys). This command is its only writer."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.directory import load_directory
from shared.events import utcnow
from shared.keys import KeyKind, KeyStore, keys_database
from shared.mongo import create_client
from shared.settings import CommonSettings


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    client = create_client(settings)
    try:
        keys = KeyStore(keys_database(client, settings))
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


def _owner(settings: CommonSettings, args: argparse.Namespace) -> tuple[KeyKind, str] | str:
    """(kind, id) of the new key's owner, or an error message."""
    if args.department:
        directory = load_directory(settings.districts_file, settings.directory_file)
        if directory.department(args.department) is None:
            return f"no department {args.department!r} in the directory"
        return (KeyKind.DEPARTMENT, args.department)
    if args.channel:
        from services.intake.channels import channel_names

        if args.channel not in channel_names():
            return f"no intake channel {args.channel!r} (known: {', '.join(channel_names())})"
        return (KeyKind.CHANNEL, args.channel)
    kind, owner = (KeyKind.AGENT, args.agent) if args.agent else (KeyKind.STAFF, args.staff)
    if not str(owner).strip() or len(owner) > 100:
        return f"give a {kind.value} id of 1 to 100 characters"
    return (kind, owner.strip())


async def _issue(keys: KeyStore, settings: CommonSettings, args: argparse.Namespace) -> int:
    owner = _owner(settings, args)
    if isinstance(owner, str):
        print(f"error: {owner}", file=sys.stderr)
        return 1
    key_id, key = await keys.issue(*owner, utcnow())
    print(f"key id: {key_id}\nkey:    {key}\n(the key is shown once; keep it secret)")
    return 0
