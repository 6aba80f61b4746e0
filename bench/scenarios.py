"""The eight scenarios. Each returns rows for the table; every figure that matters is a ratio to a baseline
measured in the same run, and a median over rounds."""

from __future__ import annotations

import asyncio
import gzip
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import bcrypt

from bench.http import BROWSER, PARTIAL, Client
from bench.load import LoadGen, Spec, percentiles_ms
from bench.stack import PASSWORD, Stack, rss_kib, set_affinity


@dataclass
class Row:
    id: str
    scenario: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    notes: str = ""
    status: str = ""
    latency_ms: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "n/a" if self.met is None else ("met" if self.met else "MISSED")


@dataclass
class Plan:
    rounds: int = 3
    duration_s: float = 5.0
    warmup_s: float = 2.0
    connections: int = 32
    login_connections: int = 8
    login_duration_s: float = 8.0
    mfa_users: int = 50
    memory_requests: int = 100_000
    memory_first: int = 1_000


@dataclass
class Context:
    stack: Stack
    gen: LoadGen
    plan: Plan
    pinned: bool
    all_cpus: set[int]
    anon_cookie: str = ""
    anon_csrf: str = ""
    profile_cookie: str = ""
    bcrypt_check_s: float = 0.0
    bcrypt_parallel_per_s: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def app(self) -> int:
        return self.stack.app_port

    def all_cores(self) -> None:
        if self.pinned:
            set_affinity(self.stack.app_pid, self.all_cpus)

    def server_core(self) -> None:
        if self.pinned and self.stack.server_cpus:
            set_affinity(self.stack.app_pid, self.stack.server_cpus)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _median_latency(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = runs[0]["latency_ms"].keys()
    return {k: round(_median([r["latency_ms"][k] for r in runs]), 3) for k in keys}


def _bad_statuses(runs: list[dict[str, Any]], ok: set[str]) -> dict[str, int]:
    bad: dict[str, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            if status not in ok:
                bad[status] = bad.get(status, 0) + count
        for kind, count in run["errors"].items():
            if kind != "status" and count:
                bad[kind] = bad.get(kind, 0) + count
    return bad


# ---- setup -----------------------------------------------------------------------------------------------------
async def prepare(ctx: Context) -> None:
    """An anonymous cookie + CSRF token (wrk replays them), a signed-in cookie, and bcrypt's cost on this machine."""
    client = Client("127.0.0.1", ctx.app)
    page = await client.get("/login", BROWSER)
    ctx.anon_csrf, ctx.anon_cookie = page.csrf(), client.cookie_header()
    await client.close()
    ctx.profile_cookie = await sign_in(ctx, ctx.stack.users.profile_user)
    # One bcrypt check at the configured cost, measured here with nothing else running: the login bound.
    hashed = ctx.stack.password_hash.encode()
    from webapp.identity.passwords import prehash

    key = prehash(ctx.stack.pepper, PASSWORD)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        assert bcrypt.checkpw(key, hashed)
        samples.append(time.perf_counter() - t0)
    ctx.bcrypt_check_s = _median(samples)
    ctx.raw["bcrypt_check_ms"] = [round(s * 1000, 2) for s in samples]
    ctx.bcrypt_parallel_per_s = await bcrypt_parallel_rate(ctx, key, hashed)


async def bcrypt_parallel_rate(ctx: Context, key: bytes, hashed: bytes, seconds: float = 3.0) -> float:
    """Checks per second with one thread per core, measured now: what the machine really delivers (context)."""
    import os
    import threading

    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ctx.all_cpus)  # threads inherit the starting thread's affinity
    counts = [0] * len(ctx.all_cpus)
    deadline = time.perf_counter() + seconds

    def work(slot: int) -> None:
        while time.perf_counter() < deadline:
            bcrypt.checkpw(key, hashed)
            counts[slot] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(counts))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    os.sched_setaffinity(0, mine)
    await asyncio.to_thread(lambda: [t.join() for t in threads])
    rate = sum(counts) / (time.perf_counter() - started)
    ctx.raw["bcrypt_parallel_per_s"] = round(rate, 2)
    return rate


async def sign_in(ctx: Context, username: str) -> str:
    client = Client("127.0.0.1", ctx.app)
    try:
        token = (await client.get("/login", BROWSER)).csrf()
        reply = await client.post_form("/login", {"csrf_token": token, "username": username, "password": PASSWORD},
                                       BROWSER)
        if reply.status != 303 or (await client.get("/profile", BROWSER)).status != 200:
            raise RuntimeError(f"could not sign in {username}: {reply.status} {reply.text[:300]}")
        return client.cookie_header()
    finally:
        await client.close()


def login_specs(ctx: Context, users: list[str]) -> list[Spec]:
    headers = {"Cookie": ctx.anon_cookie, "Content-Type": "application/x-www-form-urlencoded",
               "Sec-Fetch-Site": "same-origin", "User-Agent": BROWSER["User-Agent"]}
    return [Spec("POST", "/login", headers,
                 urlencode({"csrf_token": ctx.anon_csrf, "username": u, "password": PASSWORD})) for u in users]


# ---- 1–3: ceiling, login page, profile -------------------------------------------------------------------------
async def throughput(ctx: Context) -> list[Row]:
    ua = {"User-Agent": BROWSER["User-Agent"], "Accept-Encoding": BROWSER["Accept-Encoding"]}
    targets = {
        "ceiling": (ctx.stack.ceiling_port, [Spec("GET", "/fragment", ua)], {"200"}),
        "login-fragment": (ctx.app, [Spec("GET", "/login", {**ua, **PARTIAL, "Cookie": ctx.anon_cookie})], {"200"}),
        "login-page": (ctx.app, [Spec("GET", "/login", ua)], {"200"}),
        "profile": (ctx.app, [Spec("GET", "/profile", {**ua, "Cookie": ctx.profile_cookie})], {"200"}),
        "healthz": (ctx.app, [Spec("GET", "/healthz", ua)], {"200"}),
    }
    plan = ctx.plan
    for port, specs, _ in targets.values():
        await ctx.gen.run(port, specs, connections=plan.connections, duration_s=plan.warmup_s)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(plan.rounds):  # interleaved, so a noisy moment hits one round of everything, not one scenario
        for name, (port, specs, _) in targets.items():
            runs[name].append(await ctx.gen.run(port, specs, connections=plan.connections, duration_s=plan.duration_s))
    ctx.raw["throughput"] = runs
    ceiling = runs["ceiling"]

    def ratio(name: str) -> float:
        return _median([r["rps"] / c["rps"] for r, c in zip(runs[name], ceiling, strict=True)])

    def rps(name: str) -> float:
        return _median([r["rps"] for r in runs[name]])

    def problems(name: str) -> str:
        bad = _bad_statuses(runs[name], targets[name][2])
        return f"unexpected replies {bad}; " if bad else ""

    c = plan.connections
    rows = [Row("1", f"Ceiling: bare Starlette+Jinja fragment ({c} conns)", f"{rps('ceiling'):.0f} req/s", "—", 1.0,
                "baseline", None, problems("ceiling") + f"p99 {_ms(_median_latency(ceiling)['p99'])}",
                latency_ms=_median_latency(ceiling))]
    for name, label in (("login-fragment", "Login page, htmx fragment"), ("login-page", "Login page, full page")):
        r = ratio(name)
        lat = _median_latency(runs[name])
        rows.append(Row("2", f"{label} ({c} conns)", f"{rps(name):.0f} req/s", f"{rps('ceiling'):.0f} req/s",
                        round(r, 3), "≥ 0.50", r >= 0.5, problems(name) + f"p99 {_ms(lat['p99'])}", latency_ms=lat))
    r = ratio("profile")
    lat = _median_latency(runs["profile"])
    p99 = lat["p99"]
    rows.append(Row("3", f"Profile, signed in ({c} conns)", f"{rps('profile'):.0f} req/s; p99 {_ms(p99)}",
                    f"{rps('ceiling'):.0f} req/s", round(r, 3), "≥ 0.25 and p99 < 50 ms", r >= 0.25 and p99 < 50,
                    problems("profile") + f"ratio {'met' if r >= 0.25 else 'MISSED'}, "
                    f"p99 {'met' if p99 < 50 else 'MISSED'}", latency_ms=lat))
    r = ratio("healthz")
    lat = _median_latency(runs["healthz"])
    rows.append(Row("·", f"/healthz, app middleware only ({c} conns)", f"{rps('healthz'):.0f} req/s",
                     f"{rps('ceiling'):.0f} req/s", round(r, 3), "context", None,
                     problems("healthz") + "the app's fixed per-request cost", latency_ms=lat))
    return rows


# ---- 4–5: password logins against the bcrypt bound, and /healthz while they saturate -----------------------------
async def logins(ctx: Context) -> list[Row]:
    plan = ctx.plan
    ctx.all_cores()
    cores = len(ctx.all_cpus) if ctx.pinned else len(_affinity_of(ctx.stack.app_pid))
    bound = cores / ctx.bcrypt_check_s
    specs = login_specs(ctx, ctx.stack.users.password_users)
    await _stall(ctx, reset=True)
    await ctx.gen.run(ctx.app, specs, connections=plan.login_connections, duration_s=plan.warmup_s)
    solo: list[dict[str, Any]] = []
    for _ in range(plan.rounds):
        solo.append(await ctx.gen.run(ctx.app, specs, connections=plan.login_connections,
                                      duration_s=plan.login_duration_s, timeout_s=30))
    stall_solo = await _stall(ctx, reset=True)
    # 5: the same load plus a light closed-loop /healthz prober; its idle p99 is measured the same way first.
    probe = [Spec("GET", "/healthz", {"User-Agent": "bench-probe"})]
    idle = await ctx.gen.run(ctx.app, probe, connections=2, duration_s=max(2.0, plan.duration_s / 2))
    loaded: list[dict[str, Any]] = []
    concurrent_logins: list[dict[str, Any]] = []
    for _ in range(plan.rounds):
        login_run, probe_run = await asyncio.gather(
            ctx.gen.run(ctx.app, specs, connections=plan.login_connections, duration_s=plan.login_duration_s,
                        timeout_s=30),
            ctx.gen.run(ctx.app, probe, connections=2, duration_s=plan.login_duration_s),
        )
        concurrent_logins.append(login_run)
        loaded.append(probe_run)
    stall_loaded = await _stall(ctx, reset=True)
    ctx.server_core()
    ctx.raw["logins"] = {"solo": solo, "with_probe": concurrent_logins, "probe_idle": idle, "probe_loaded": loaded,
                         "bound_per_s": bound, "cores": cores, "stall_solo": stall_solo, "stall_loaded": stall_loaded}
    rate = _median([r["rps"] for r in solo])
    bad = _bad_statuses(solo + concurrent_logins, {"303"})
    lat = _median_latency(solo)
    rows = [Row("4", f"Password logins, 2FA off ({plan.login_connections} conns)", f"{rate:.2f} logins/s",
                f"{bound:.2f}/s = {cores} cores ÷ {ctx.bcrypt_check_s * 1000:.0f} ms bcrypt",
                round(rate / bound, 3), "≥ 0.90", rate / bound >= 0.9,
                (f"unexpected replies {bad}; " if bad else "")
                + f"p50 {_ms(lat['p50'])}; loop max stall {stall_solo.get('max_stall_ms', '?')} ms; "
                f"{cores} threads of bare bcrypt did {ctx.bcrypt_parallel_per_s:.2f}/s "
                f"(ratio to that {rate / ctx.bcrypt_parallel_per_s:.2f})", latency_ms=lat)]
    p99 = _median([r["latency_ms"]["p99"] for r in loaded])
    idle_p99 = idle["latency_ms"]["p99"]
    rate_with_probe = _median([r["rps"] for r in concurrent_logins])
    rows.append(Row("5", "Isolation: /healthz p99 during 4", f"p99 {_ms(p99)}", f"idle p99 {_ms(idle_p99)}",
                    round(p99 / idle_p99, 1) if idle_p99 else None, "p99 ≤ 100 ms", p99 <= 100,
                    f"logins meanwhile {rate_with_probe:.2f}/s; "
                    f"loop max stall {stall_loaded.get('max_stall_ms', '?')} ms",
                    latency_ms=_median_latency(loaded)))
    return rows


def _affinity_of(pid: int) -> set[int]:
    import os

    return os.sched_getaffinity(pid)


async def _stall(ctx: Context, reset: bool = False) -> dict[str, Any]:
    client = Client("127.0.0.1", ctx.app)
    try:
        reply = await client.get("/_bench/stall" + ("?reset=1" if reset else ""))
        import json

        data: dict[str, Any] = json.loads(reply.body)
        return data
    finally:
        await client.close()


# ---- 6: password + code login while Verify answers after 300 ms ---------------------------------------------------
async def _set_verify_latency(ctx: Context, ms: int) -> None:
    base = ctx.stack.fake["base_url"].removeprefix("http://")
    host, _, port = base.partition(":")
    client = Client(host, int(port))
    try:
        await client.request("POST", "/_fake/latency", {"Content-Type": "application/json"},
                             f'{{"ms": {ms}}}'.encode())
    finally:
        await client.close()


async def _code_for(ctx: Context, username: str) -> str:
    sid = await asyncio.to_thread(ctx.stack.verification_sid, username)
    if not sid:
        raise RuntimeError(f"no verification for {username}")
    base = ctx.stack.fake["base_url"].removeprefix("http://")
    host, _, port = base.partition(":")
    client = Client(host, int(port))
    try:
        reply = await client.get(f"/_fake/code?sid={sid}")
        import json

        code: str = json.loads(reply.body)["code"]
        return code
    finally:
        await client.close()


async def two_factor_login(ctx: Context, username: str, headers: dict[str, str] | None = None,
                           record: list[tuple[str, Any]] | None = None) -> float:
    """GET /login, POST password (303 → /login/verify), GET the code form, POST the code (303 → next), GET it."""
    h = headers or BROWSER
    client = Client("127.0.0.1", ctx.app)
    started = time.perf_counter()
    try:
        token = (await client.get("/login", BROWSER)).csrf()
        reply = await client.post_form("/login", {"csrf_token": token, "username": username, "password": PASSWORD}, h)
        location = reply.header("location") or reply.header("hx-redirect") or ""
        if record is not None:
            record.append(("password → code step", reply))
        if reply.status in (200, 303) and location.startswith("/login/verify"):
            page = await client.get(location, BROWSER)
        elif reply.status == 200 and 'name="code"' in reply.text:
            page = reply  # a partial request may get the code step swapped in directly
        else:
            raise FlowMissing(f"POST /login for a 2FA user answered {reply.status} {location!r}")
        code = await _code_for(ctx, username)
        if record is not None:
            wrong = "000000" if code != "000000" else "111111"
            record.append(("wrong code", await client.post_form(
                "/login/verify", {"csrf_token": page.csrf(), "code": wrong}, h)))
            page = await client.get("/login/verify", BROWSER)
        done = await client.post_form("/login/verify", {"csrf_token": page.csrf(), "code": code}, h)
        if record is not None:
            record.append(("code ok → redirect", done))
        target = done.header("location") or done.header("hx-redirect") or ""
        if done.status not in (200, 303) or not target:
            raise RuntimeError(f"POST /login/verify answered {done.status}: {done.text[:200]}")
        final = await client.get(target, BROWSER)
        if final.status != 200:
            raise RuntimeError(f"after the code step {target} answered {final.status}")
        return time.perf_counter() - started
    finally:
        await client.close()


class FlowMissing(Exception):
    pass


async def slow_twilio(ctx: Context, latency_ms: int) -> list[Row]:
    plan, users = ctx.plan, ctx.stack.users
    label = f"Slow Twilio: {plan.mfa_users} users, password + code, Verify +{latency_ms} ms"
    ctx.all_cores()
    try:
        await _set_verify_latency(ctx, latency_ms)
        try:
            await two_factor_login(ctx, users.mfa_probe)
        except FlowMissing as exc:
            ctx.raw["slow_twilio"] = {"not_run": str(exc)}
            return [Row("6", label, "—", "—", None, "≈ bcrypt bound + 2 RTT; stall < 50 ms", None,
                        str(exc), status="not run: flow missing")]
        cores = len(ctx.all_cpus) if ctx.pinned else len(_affinity_of(ctx.stack.app_pid))
        bound = plan.mfa_users * ctx.bcrypt_check_s / cores + 2 * latency_ms / 1000
        serial = plan.mfa_users * latency_ms / 1000
        totals, stalls, per_user = [], [], []
        for batch in users.mfa_rounds[: plan.rounds]:
            await _stall(ctx, reset=True)
            t0 = time.perf_counter()
            durations = await asyncio.gather(*(two_factor_login(ctx, u) for u in batch[: plan.mfa_users]))
            totals.append(time.perf_counter() - t0)
            stalls.append((await _stall(ctx, reset=True))["max_stall_ms"])
            per_user.extend(durations)
    finally:
        await _set_verify_latency(ctx, 0)
        ctx.server_core()
    total = _median(totals)
    stall = max(stalls)
    ratio = bound / total
    ctx.raw["slow_twilio"] = {"totals_s": totals, "stalls_ms": stalls, "bound_s": bound, "serial_s": serial}
    met = ratio >= 0.8 and total < serial and stall < 50
    return [Row("6", label, f"{total:.2f} s total; loop max stall {stall:.1f} ms",
                f"bound {bound:.2f} s (bcrypt {plan.mfa_users}×{ctx.bcrypt_check_s * 1000:.0f} ms÷{cores} + 2×RTT)",
                round(ratio, 3), "bound/total ≥ 0.8; stall < 50 ms", met,
                f"serialised on Verify would be {serial:.0f} s; per-user p50 {_median(per_user):.2f} s",
                latency_ms=percentiles_ms(per_user))]


# ---- 7: memory --------------------------------------------------------------------------------------------------
def mixed_specs(ctx: Context) -> list[Spec]:
    ua = {"User-Agent": BROWSER["User-Agent"]}
    return [
        Spec("GET", "/login", ua),
        Spec("GET", "/login", {**ua, **PARTIAL, "Cookie": ctx.anon_cookie}),
        Spec("GET", "/profile", {**ua, "Cookie": ctx.profile_cookie}),
        Spec("GET", "/healthz", ua),
        Spec("GET", "/static/app.css", ua),
        Spec("GET", "/register", ua),
        Spec("GET", "/profile", ua),  # signed out: the redirect to /login
        Spec("GET", "/", {**ua, "Cookie": ctx.profile_cookie}),
    ]


async def run_count(ctx: Context, specs: list[Spec], count: int, connections: int = 16) -> dict[str, Any]:
    """About `count` requests: wrk runs for a duration (a Lua stop only idles its thread), so run timed chunks
    sized from the rate seen so far, each capped at what is left, and add them up."""
    done, elapsed = 0, 0.0
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    chunks: list[dict[str, Any]] = []
    rates: list[float] = []
    rate = 500.0
    while done < count:
        left = count - done
        seconds = max(1.0, min(30.0, left / rate * 1.05 + 0.5))
        run = await ctx.gen.run(ctx.app, specs, connections=connections, duration_s=seconds, limit=left)
        if run["requests"] == 0:
            raise RuntimeError(f"no replies in a {seconds:.0f} s chunk: {run}")
        done += run["requests"]
        elapsed += run["duration_s"]
        rate = max(50.0, run["requests"] / max(run["duration_s"], 0.001))
        if run["requests"] < left:  # ran the whole chunk: a fair rate (a stopped one idles until its end)
            rates.append(rate)
        chunks.append(run)
        for key, value in run["statuses"].items():
            statuses[key] = statuses.get(key, 0) + value
        for key, value in run["errors"].items():
            errors[key] = errors.get(key, 0) + value
    return {"requests": done, "duration_s": round(elapsed, 1), "statuses": statuses, "errors": errors,
            "rps": round(_median(rates) if rates else rate, 1), "latency_ms": chunks[-1]["latency_ms"],
            "chunks": len(chunks)}


async def memory(ctx: Context) -> list[Row]:
    plan = ctx.plan
    specs = mixed_specs(ctx)
    pid = ctx.stack.app_pid
    start = rss_kib(pid)
    first = await run_count(ctx, specs, plan.memory_first)
    after_first = rss_kib(pid)
    rest = await run_count(ctx, specs, plan.memory_requests - first["requests"])
    after_all = rss_kib(pid)
    total = first["requests"] + rest["requests"]
    ratio = after_all / after_first
    bad = _bad_statuses([first, rest], {"200", "303"})
    ctx.raw["memory"] = {"rss_kib_start": start, "rss_kib_after_first": after_first, "rss_kib_after_all": after_all,
                         "requests": total, "runs": [first, rest]}
    return [Row("7", f"Memory: worker RSS after {total // 1000}k mixed requests", f"{after_all / 1024:.1f} MiB",
                f"{after_first / 1024:.1f} MiB after {first['requests'] // 1000}k", round(ratio, 3), "≤ 1.20",
                ratio <= 1.2, (f"unexpected replies {bad}; " if bad else "")
                + f"mix of {len(specs)} GETs at {rest['rps']:.0f} req/s", latency_ms=rest["latency_ms"])]


# ---- 8: page weight -----------------------------------------------------------------------------------------------
ASSET_RE = re.compile(r'<(?:link[^>]+rel="stylesheet"[^>]+href|script[^>]+src)="([^"]+)"')


async def page_weight(ctx: Context, two_factor: bool) -> list[Row]:
    client = Client("127.0.0.1", ctx.app)
    parts: list[dict[str, Any]] = []
    try:
        page = await client.get("/login", BROWSER)
        parts.append(_part("/login (HTML)", page))
        for path in ASSET_RE.findall(page.text):
            parts.append(_part(path, await client.get(path, {**BROWSER, "Accept": "*/*"})))
    finally:
        await client.close()
    first_visit = sum(p["wire_bytes"] for p in parts)
    gzipped = sum(p["gzip_estimate"] for p in parts)
    swaps = await _swaps(ctx, two_factor)
    biggest = max(swaps, key=lambda s: s["wire_bytes"])
    ctx.raw["page_weight"] = {"first_visit": parts, "swaps": swaps}
    encodings = sorted({p["encoding"] or "identity" for p in parts})
    return [
        Row("8", "Page weight: first visit to /login (HTML+CSS+JS)", f"{first_visit / 1024:.1f} KB",
            "30 KB budget", round(first_visit / 30720, 3), "≤ 30 KB", first_visit <= 30720,
            f"served as {'/'.join(encodings)}; gzip would make it {gzipped / 1024:.1f} KB; "
            + ", ".join(f"{p['what']} {p['wire_bytes'] / 1024:.1f}" for p in parts)),
        Row("8", f"Page weight: largest swap in the login flow ({len(swaps)} swaps)",
            f"{biggest['wire_bytes'] / 1024:.2f} KB", "4 KB budget", round(biggest["wire_bytes"] / 4096, 3),
            "≤ 4 KB each", all(s["wire_bytes"] <= 4096 for s in swaps),
            "; ".join(f"{s['what']} {s['wire_bytes'] / 1024:.2f}" for s in swaps)),
    ]


def _part(what: str, reply: Any) -> dict[str, Any]:
    head = reply.wire_bytes - (len(gzip.compress(reply.body)) if reply.encoding == "gzip" else len(reply.body))
    if reply.encoding not in ("", "gzip"):
        head = 0
    return {"what": what, "status": reply.status, "wire_bytes": reply.wire_bytes, "encoding": reply.encoding,
            "body_bytes": len(reply.body), "gzip_estimate": head + len(gzip.compress(reply.body, 6))
            if reply.encoding == "" else reply.wire_bytes}


async def _swaps(ctx: Context, two_factor: bool) -> list[dict[str, Any]]:
    """Each htmx swap of the sign-in flow, as the browser would request it (partial, with the form's token)."""
    swaps: list[dict[str, Any]] = []
    users = ctx.stack.users
    h = {**BROWSER, **PARTIAL}
    client = Client("127.0.0.1", ctx.app)
    try:
        token = (await client.get("/login", BROWSER)).csrf()
        swaps.append(_part("login form (GET, partial)", await client.get("/login", h)))
        wrong = await client.post_form("/login", {"csrf_token": token, "username": users.weight_user,
                                                  "password": "not-the-password-at-all"}, h)
        swaps.append(_part("wrong password", wrong))
        token = wrong.csrf()
        ok = await client.post_form("/login", {"csrf_token": token, "username": users.weight_user,
                                               "password": PASSWORD}, h)
        swaps.append(_part("password ok → HX-Redirect", ok))
    finally:
        await client.close()
    if two_factor:
        record: list[tuple[str, Any]] = []
        try:
            await two_factor_login(ctx, users.mfa_weight, h, record)
        except (FlowMissing, RuntimeError, ValueError) as exc:
            swaps.append({"what": f"2FA swaps not measured ({exc})", "wire_bytes": 0})
        for what, reply in record:
            swaps.append(_part(what, reply))
    return swaps
