"""R-X1: Verify calls never block the event loop; concurrent sends overlap instead of queueing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeverify.plugin import FakeVerify
from webapp.settings import Settings
from webapp.verify import open_gateway

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_in_subprocess() -> Iterator[FakeVerify]:
    """The fake in its own interpreter: 50 handler threads in ours would stall the loop over the GIL, not the app."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeverify"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        fake = FakeVerify(**json.loads(process.stdout.readline()))
        yield fake
        assert fake.violations() == []
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=10)


async def test_fifty_concurrent_starts_overlap_without_stalling_the_loop(fake_in_subprocess: FakeVerify) -> None:
    fake = fake_in_subprocess
    settings = Settings().with_overrides(
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_verify_service_sid=fake.service_sid,
        twilio_verify_base_url=fake.base_url,
        twilio_timeout_s=2.0,
    )
    fake.set_latency(200)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    async with open_gateway(settings) as gateway:
        await gateway.start("+14155550100")  # the first call pays for lazy imports
        tick = asyncio.create_task(ticker())
        began = time.perf_counter()
        results = await asyncio.gather(*(gateway.start(f"+1415555{n:04d}") for n in range(200, 250)))
        elapsed = time.perf_counter() - began
        stop.set()
        await tick
    assert len({r.sid for r in results}) == 50
    # Queued one after another they would take 50 × 200 ms = 10 s; overlapping, about one latency.
    assert elapsed < 5.0, f"50 starts at 200 ms each took {elapsed:.2f} s: they queued instead of overlapping"
    # The loop kept running other work while all 50 were in flight (how long it stalls is measured by the bench).
    assert ticks >= 5, f"only {ticks} ticks of another task ran while the calls were in flight"
