"""CPU-bound hashing off the event loop: one bcrypt thread per core, shared by passwords and recovery codes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
# More threads than cores only queue on the CPU and starve the event loop's thread.
_BCRYPT_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="bcrypt")


async def run_bcrypt(func: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_BCRYPT_POOL, func, *args)
