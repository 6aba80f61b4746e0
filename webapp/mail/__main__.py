"""`python -m webapp.mail drain`: deliver everything due in the outbox now, then exit (cron, or after an outage).

It claims rows exactly like the app's own sender, so it can run beside any number of app processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from webapp.db import Database
from webapp.logging_setup import configure_logging
from webapp.mail.sender import MailSender
from webapp.mail.transport import open_transport
from webapp.settings import ConfigError, load_settings


async def drain(batch: int, worker: str) -> int:
    settings = load_settings()
    settings = settings.with_overrides(mail_batch=batch or settings.mail_batch)
    db = Database(settings.database_url)
    try:
        sender = MailSender(settings, db, open_transport(settings), worker=worker)
        total = 0
        while handled := await sender.deliver_due():
            total += handled
        return total
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.mail")
    parser.add_argument("command", choices=["drain"])
    parser.add_argument("--batch", type=int, default=0, help="rows claimed per round (default: the app's)")
    parser.add_argument("--worker", default="", help="name recorded in claimed_by (default: host:pid:random)")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        handled = asyncio.run(drain(args.batch, args.worker))
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"handled": handled}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
