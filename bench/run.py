"""Orchestration: start the stack, run the scenarios in a fixed order, print the table, write JSON and PNG."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import profiling, report, scenarios
from bench.load import LoadGen, ensure_wrk
from bench.scenarios import Context, Plan, Row
from bench.stack import PG_DEFAULT, ROOT, Stack

RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--postgres", nargs="?", const=os.environ.get("BENCH_PG_URL", PG_DEFAULT), default=None,
                   metavar="URL", help=f"use PostgreSQL (database is dropped and recreated; default {PG_DEFAULT})")
    p.add_argument("--rounds", type=int, default=3, help="rounds per scenario; figures are medians (default 3)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per throughput measurement (default 5)")
    p.add_argument("--connections", type=int, default=32, help="connections for scenarios 1–3 (default 32)")
    p.add_argument("--users", type=int, default=50, help="concurrent users in scenario 6 (default 50)")
    p.add_argument("--verify-latency-ms", type=int, default=300, help="fake Verify delay in scenario 6 (default 300)")
    p.add_argument("--memory-requests", type=int, default=100_000, help="requests in scenario 7 (default 100000)")
    p.add_argument("--bcrypt-rounds", type=int, default=int(os.environ.get("BCRYPT_ROUNDS") or 12),
                   help="cost the app runs with (default BCRYPT_ROUNDS or 12)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, short measurements, 20k requests")
    p.add_argument("--no-pin", action="store_true", help="don't pin the server and the generator to separate cores")
    p.add_argument("--asyncio-driver", action="store_true", help="use the asyncio generator even when wrk exists")
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    p.add_argument("--profile", action="store_true",
                   help="also record py-spy flame graphs of scenarios 3 and 4 into the results folder")
    p.add_argument("--only", default="1,2,3,4,5,6,7,8", metavar="LIST",
                   help="scenario numbers to run, e.g. --only 6 or --only 4,5 (1–3 run together; default all)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go (default bench/results)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, SQLite file)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(rounds=args.rounds, duration_s=args.duration, connections=args.connections, mfa_users=args.users,
                memory_requests=args.memory_requests)
    if args.quick:
        plan = Plan(rounds=2, duration_s=2.0, warmup_s=1.0, connections=args.connections, login_duration_s=4.0,
                    mfa_users=args.users, memory_requests=min(args.memory_requests, 20_000))
    cpus = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and len(cpus) >= 2 and shutil.which("taskset") is not None
    gen_cpus, server_cpus = ({cpus[0]}, {cpus[1]}) if pinned else (None, None)
    if args.asyncio_driver:
        wrk, how = None, "asyncio driver (forced by --asyncio-driver)"
    else:
        wrk, how = ensure_wrk(allow_install=not args.no_install)
    if gen_cpus:
        os.sched_setaffinity(0, gen_cpus)  # the harness, its asyncio driver and the fake Verify server: core 0
    gen = LoadGen(wrk, how, ",".join(map(str, sorted(gen_cpus))) if gen_cpus else None)
    workdir = Path(tempfile.mkdtemp(prefix="webapp-bench-"))
    stack = Stack(workdir=workdir, postgres_url=args.postgres, bcrypt_rounds=args.bcrypt_rounds,
                  verify_latency_ms=args.verify_latency_ms, server_cpus=server_cpus)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"bench: load generator = {how}; " + (
        f"server pinned to CPU {cpus[1]}, generator/driver/fake Verify to CPU {cpus[0]} "
        "(scenarios 4–6 widen the server to all cores: bcrypt runs in threads)" if pinned else "no CPU pinning"),
        flush=True)
    print(f"bench: scratch folder {workdir}", flush=True)
    rows: list[Row] = []
    ctx: Context | None = None
    try:
        stack.start_fake()
        stack.configure()
        stack.migrate_and_seed(password_users=16, mfa_users=plan.mfa_users, rounds=plan.rounds)
        stack.start_servers()
        ctx = Context(stack=stack, gen=gen, plan=plan, pinned=pinned, all_cpus=set(cpus))
        rows = asyncio.run(_scenarios(ctx, args))
    except BaseException:
        for name in ("app", "ceiling", "fakeverify"):
            log = workdir / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- last lines of {log}:\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    meta = _meta(args, plan, how, pinned, cpus, stack, ctx, elapsed)
    meta["loadavg_1min_before"], meta["loadavg_1min_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
    print()
    print(report.table(rows))
    print()
    missed = [r for r in rows if r.status == "MISSED"]
    not_run = [r for r in rows if r.status.startswith("not run")]
    print(f"bench: {sum(r.status == 'met' for r in rows)} met, {len(missed)} missed, {len(not_run)} not run; "
          f"{elapsed:.0f} s wall time; {meta['how_run']}; 1-min load average {load_before:.1f} before, "
          f"{meta['loadavg_1min_after']:.1f} after (anything else running skews absolute numbers, less the ratios)")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y-%m-%d")
    json_path, png_path = args.out / f"{stem}.json", args.out / f"{stem}.png"
    report.write_json(json_path, rows, meta, ctx.raw if ctx else {})
    (args.out / f"{stem}.md").write_text(report.markdown(rows) + "\n")
    title = (f"webapp bench {stem}: latency percentiles per scenario ({meta['database']}, bcrypt cost "
             f"{args.bcrypt_rounds}, {how.split(' (')[0]})")
    drew = report.chart(png_path, rows, title)
    print(f"bench: wrote {_rel(json_path)}" + (f" and {_rel(png_path)}" if drew else " (no chart: matplotlib missing)"))
    return 0


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


async def _scenarios(ctx: Context, args: argparse.Namespace) -> list[Row]:
    def step(name: str) -> None:
        print(f"bench: [{time.strftime('%H:%M:%S')}] {name}", flush=True)

    only = {part.strip() for part in args.only.split(",")}
    rows: list[Row] = []
    memory: list[Row] = []
    weight: list[Row] = []
    step("setup: sign-in cookie, CSRF pair, bcrypt calibration")
    await scenarios.prepare(ctx)
    two_factor = await _two_factor_route_exists(ctx)
    if "8" in only:
        step("8 page weight")
        weight = await scenarios.page_weight(ctx, two_factor)
    if "7" in only:
        step(f"7 memory: {ctx.plan.memory_requests} mixed requests on the fresh worker")
        memory = await scenarios.memory(ctx)
    if only & {"1", "2", "3"}:
        step(f"1–3 throughput: 5 targets × {ctx.plan.rounds} rounds, interleaved")
        rows += await scenarios.throughput(ctx)
    if only & {"4", "5"}:
        step("4–5 password logins against the bcrypt bound; /healthz alongside")
        rows += await scenarios.logins(ctx)
    if "6" in only:
        step(f"6 slow Twilio ({args.verify_latency_ms} ms), {ctx.plan.mfa_users} users")
        rows += await scenarios.slow_twilio(ctx, args.verify_latency_ms)
    rows += memory + weight
    if args.profile:
        step("profiles (py-spy)")
        await _profiles(ctx, args.out)
    return rows


async def _two_factor_route_exists(ctx: Context) -> bool:
    from bench.http import Client

    client = Client("127.0.0.1", ctx.app)
    try:
        return (await client.get("/login/verify")).status != 404
    finally:
        await client.close()


async def _profiles(ctx: Context, out: Path) -> None:
    """py-spy samples of the profile page and of password logins: evidence for what limits scenarios 3 and 4."""
    from bench.load import Spec

    jobs: list[tuple[str, list[Spec], int, bool]] = [
        ("profile", [Spec("GET", "/profile", {"Cookie": ctx.profile_cookie})], ctx.plan.connections, False),
        ("login", scenarios.login_specs(ctx, ctx.stack.users.password_users), ctx.plan.login_connections, True),
    ]
    ctx.raw["profiles"] = {}
    for name, specs, conns, wide in jobs:
        if wide:
            ctx.all_cores()
        seconds = 8
        load = ctx.gen.run(ctx.app, specs, connections=conns, duration_s=seconds + 1, timeout_s=30)
        summary = await profiling.record(ctx.stack.app_pid, seconds, out, name, load)
        ctx.server_core()
        if summary:
            ctx.raw["profiles"][name] = summary
            print(profiling.render(name, summary), flush=True)


def _meta(args: argparse.Namespace, plan: Plan, how: str, pinned: bool, cpus: list[int], stack: Stack,
          ctx: Context | None, elapsed: float) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    database = "PostgreSQL" if args.postgres else "SQLite"
    run = (f"{database}; one uvicorn worker (uvloop, httptools), APP_ENV=production; "
           + (f"server on CPU {cpus[1]}, generator on CPU {cpus[0]} (4–6: server on all {len(cpus)})"
              if pinned else "unpinned"))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "how_run": run,
        "database": database,
        "generator": how,
        "pinned": pinned,
        "cpus": len(cpus),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "bcrypt_rounds": args.bcrypt_rounds,
        "bcrypt_check_ms": round(ctx.bcrypt_check_s * 1000, 1) if ctx else None,
        "verify_latency_ms": args.verify_latency_ms,
        "plan": plan.__dict__,
        "wall_time_s": round(elapsed, 1),
        "git": _git(),
    }


def _git() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return ""
