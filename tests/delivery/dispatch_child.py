"""A dispatcher in a process of its own, for the crash and concurrency tests:

    python -m tests.delivery.dispatch_child DB_URL SMTP_URL NOW [--hang-after N --marker F]

With --hang-after N it stops after its Nth send, before recording it: it writes F and waits
to be killed (the test's seam between sending and recording). Otherwise it dispatches
everything due and prints the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

from engine.delivery.dispatch import dispatch
from models.db import make_engine
from notifications.base import ChannelNotConfigured
from notifications.smtp import SmtpTransport
from tests.delivery.conftest import BASE_URL, SENDER, routing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("smtp_url")
    parser.add_argument("now")
    parser.add_argument("--hang-after", type=int)
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    sends = 0

    def after_send(notification) -> None:
        nonlocal sends
        sends += 1
        if args.hang_after is not None and sends == args.hang_after:
            # The results before this one are recorded on the dispatcher's second connection
            # meanwhile (a few milliseconds); give it a second, then say where we are.
            time.sleep(1)
            # Whole or not at all: the test reads the key as soon as the file is there.
            partial = args.marker.with_suffix(".partial")
            partial.write_text(notification.key)
            partial.replace(args.marker)
            time.sleep(600)  # killed here: sent, not yet recorded

    engine = make_engine(args.database_url)
    transports = {
        "email": SmtpTransport(args.smtp_url, SENDER, timeout=10),
        "teams": ChannelNotConfigured("not used here"),
    }
    report = dispatch(
        engine,
        transports,
        routing=routing(digest=None),
        base_url=BASE_URL,
        now=datetime.fromisoformat(args.now),
        batch=args.batch,
        after_send=after_send,
    )
    print(json.dumps(report.to_json()))
    engine.dispose()


if __name__ == "__main__":
    main()
