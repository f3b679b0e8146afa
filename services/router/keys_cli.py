"""`hotline keys issue|revoke|list`: API keys of departments and hotline staff."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.router.keys import KeyRepository
from services.router.workflow.state import Principal
from shared.directory import load_directory
from shared.domain import ActorKind
from shared.events import utcnow
from shared.mongo import create_client, service_database
from shared.settings import RouterSettings


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    settings = RouterSettings()
    client = create_client(settings)
    try:
        keys = KeyRepository(service_database(client, settings, "router"))
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


async def _issue(keys: KeyRepository, settings: RouterSettings, args: argparse.Namespace) -> int:
    if args.department:
        directory = load_directory(settings.districts_file, settings.directory_file)
        if directory.department(args.department) is None:
            print(f"error: no department {args.department!r}", file=sys.stderr)
            return 1
        principal = Principal(kind=ActorKind.DEPARTMENT, id=args.department)
    else:
        principal = Principal(kind=ActorKind.STAFF, id=args.staff)
    key_id, key = await keys.issue(principal, utcnow())
    print(f"key id: {key_id}\nkey:    {key}\n(the key is shown once; keep it secret)")
    return 0
