"""Run the fake standalone: `python -m tests.fakeverify` prints its settings as one JSON line, then serves.

Useful for trying the Twilio backend by hand (set the printed values as TWILIO_* variables) and for tests that
must keep the fake's threads off their own interpreter's GIL, such as event-loop stall measurements.
"""

from __future__ import annotations

import contextlib
import json
import sys

from tests.fakeverify.server import FakeVerifyServer


def main() -> None:
    server = FakeVerifyServer().start()
    print(json.dumps(server.settings()), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # serve until stdin closes, so a parent that dies takes the fake with it
    server.stop()


if __name__ == "__main__":
    main()
