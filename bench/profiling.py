"""py-spy samples of the app worker under one load, summarised: where the time goes, by function and package."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FRAME_RE = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
PACKAGES = ("webapp", "bench", "sqlalchemy", "aiosqlite", "sqlite3", "psycopg", "jinja2", "starlette", "uvicorn",
            "h11", "asyncio", "bcrypt", "itsdangerous", "multipart", "logging", "json", "threading")


def py_spy() -> str | None:
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    return spy if os.path.exists(spy) else None


def _package(file: str) -> str:
    parts = file.replace("\\", "/").split("/")
    for part in parts:
        name = part.removesuffix(".py")
        if name in PACKAGES:
            return name
    return parts[-1].removesuffix(".py") or "?"


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of samples per function, and self share per package."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        total += count
        if frames and frames[0].startswith(("thread", "process")):
            threads[frames[0]] += count
        names = []
        for frame in frames:
            match = FRAME_RE.match(frame)
            if match:
                names.append((f"{match['func']} ({_package(match['file'])}:{Path(match['file']).name})",
                              _package(match["file"])))
        if not names:
            continue
        own[names[-1][0]] += count
        packages[names[-1][1]] += count
        for name in {n for n, _ in names}:
            inclusive[name] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)] if total else []

    return {"samples": total, "self": pct(own), "inclusive": pct(inclusive), "self_by_package": pct(packages),
            "threads": pct(threads)}


async def record(pid: int, seconds: int, out: Path, name: str, load: Any) -> dict[str, Any] | None:
    """Sample `pid` for `seconds` while awaiting `load`; write the collapsed stacks and a flame graph."""
    spy = py_spy()
    if spy is None:
        print("bench: py-spy missing (pip install -r bench/requirements.txt); no profiles", file=sys.stderr)
        return None
    raw = out / f"profile-{name}.txt"
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--threads",
        "--format", "raw", "--output", str(raw), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await load
    _, err = await proc.communicate()
    if proc.returncode != 0 or not raw.exists():
        print(f"bench: py-spy {name} failed: {err.decode()[-300:]}", file=sys.stderr)
        return None
    summary = summarise(raw.read_text())
    summary["file"] = str(raw)
    return summary


def render(name: str, summary: dict[str, Any]) -> str:
    lines = [f"py-spy: {name} ({summary['samples']} samples, all threads)"]
    lines.append("  self time by package: " + ", ".join(f"{k} {v}%" for k, v in summary["self_by_package"][:8]))
    lines.append("  inclusive, top functions:")
    lines += [f"    {v:5.1f}%  {k}" for k, v in summary["inclusive"][:12]]
    lines.append("  self, top functions:")
    lines += [f"    {v:5.1f}%  {k}" for k, v in summary["self"][:8]]
    return "\n".join(lines)
