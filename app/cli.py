"""The `refundwatch` command: serve, worker, migrate, keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from app.config import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refundwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve the API (and the worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--no-worker", action="store_true", help="API only; run `refundwatch worker` elsewhere"
    )

    commands.add_parser("worker", help="run the scheduler and the webhook relay alone")
    commands.add_parser("migrate", help="upgrade the database schema to head")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope", action="append", choices=["ingest", "read", "admin"], required=True
    )

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "migrate":
        from app.db.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
        print("database at head")
        return 0
    if args.command == "serve":
        return _serve(args.host, args.port, args.workers, not args.no_worker)
    if args.command == "worker":
        from app.db.migrate import upgrade_to_head
        from app.worker.scheduler import run_worker_forever

        upgrade_to_head(settings.database_url)
        asyncio.run(run_worker_forever(settings))
        return 0
    if args.command == "keys":
        return asyncio.run(_create_key(args.name, args.scope))
    return 2


def _serve(host: str, port: int, workers: int, with_worker: bool) -> int:
    import os

    import uvicorn

    from app.db.migrate import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(settings.database_url)
    asyncio.run(_first_start_key())
    os.environ["REFUNDWATCH_RUN_WORKER"] = "1" if with_worker else "0"
    if workers > 1 and with_worker:
        print(
            "note: with several API workers, the worker runs in each; prefer --no-worker plus "
            "`refundwatch worker`",
            file=sys.stderr,
        )
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=True,
    )
    return 0


async def _first_start_key() -> None:
    """With no bootstrap key and no key at all, print a new admin key once.

    So the Quick start works without configuration, and still no endpoint is open.
    """
    from sqlalchemy import func, select

    from app.auth.models import ApiKey
    from app.auth.service import create_key
    from app.clock import SystemClock
    from app.db.engine import Database, create_engine

    settings = get_settings()
    if settings.bootstrap_admin_key is not None:
        return
    db = Database(create_engine(settings))
    try:
        async with db.transaction() as session:
            if await session.scalar(select(func.count()).select_from(ApiKey)):
                return
            _record, key = await create_key(
                session, name="first-admin", scopes=["admin"], now=SystemClock().now()
            )
    finally:
        await db.dispose()
    print(
        "\nNo API key existed, so refundwatch created an admin key (shown once):\n\n"
        f"    {key}\n\nUse it as: Authorization: Bearer {key}\n",
        file=sys.stderr,
        flush=True,
    )


async def _create_key(name: str, scopes: list[str]) -> int:
    from app.auth.service import create_key
    from app.clock import SystemClock
    from app.db.engine import Database, create_engine
    from app.db.migrate import upgrade_to_head

    settings = get_settings()
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    db = Database(create_engine(settings))
    try:
        async with db.transaction() as session:
            record, key = await create_key(
                session, name=name, scopes=scopes, now=SystemClock().now()
            )
            print(f"created key {record.id} ({record.name}, scopes {','.join(record.scopes)}):")
    finally:
        await db.dispose()
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
