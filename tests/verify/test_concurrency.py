"""R-X1: Verify calls never block the event loop; concurrent sends overlap instead of queueing."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakeverify.plugin import FakeVerify
from webapp.settings import Settings
from webapp.verify import open_gateway

pytestmark = pytest.mark.anyio


async def test_fifty_concurrent_starts_overlap_without_stalling_the_loop(
    twilio_settings: Settings, fake_verify: FakeVerify
) -> None:
    fake_verify.set_latency(200)
    longest_gap = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest_gap
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            longest_gap = max(longest_gap, now - last)
            last = now

    async with open_gateway(twilio_settings) as gateway:
        await gateway.start("+14155550100")  # first call pays imports and connection setup
        tick = asyncio.create_task(ticker())
        began = time.perf_counter()
        results = await asyncio.gather(*(gateway.start(f"+1415555{n:04d}") for n in range(200, 250)))
        elapsed = time.perf_counter() - began
        stop.set()
        await tick
    assert len({r.sid for r in results}) == 50
    assert elapsed < 1.2, f"50 starts at 200 ms took {elapsed:.2f} s: they queued instead of overlapping"
    assert longest_gap < 0.05, f"event loop stalled for {longest_gap * 1000:.0f} ms"
