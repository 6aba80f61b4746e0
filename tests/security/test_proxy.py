"""Trusted proxies (R-L2): X-Forwarded-For and -Proto count only from configured peers; by default from none."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from webapp.security.proxy import TrustedProxyMiddleware
from webapp.settings import ConfigError, Settings, load_settings, parse_forwarded_allow_ips

CLIENT = "203.0.113.7"
SPOOF = "198.51.100.66"


def echo_app(trusted: Sequence[str] | str) -> Starlette:
    async def show(request: Request) -> JSONResponse:
        assert request.client is not None
        return JSONResponse({"host": request.client.host, "port": request.client.port, "scheme": request.url.scheme})

    return Starlette(routes=[Route("/", show)], middleware=[Middleware(TrustedProxyMiddleware, trusted=trusted)])


def seen(trusted: Sequence[str] | str, peer: str, headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    with TestClient(echo_app(trusted), base_url="http://testserver", client=(peer, 40000)) as client:
        body: dict[str, Any] = client.get("/", headers=list(headers)).json()
        return body


FORWARDED = [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "https")]


# --- nobody trusted by default -------------------------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.0.0.2", "testclient"])
def test_default_trusts_no_peer_not_even_loopback(peer: str) -> None:
    assert seen((), peer, FORWARDED) == {"host": peer, "port": 40000, "scheme": "http"}


def test_settings_default_trusts_nobody() -> None:
    assert Settings().forwarded_allow_ips == ()


def test_untrusted_peer_forwarded_headers_are_ignored() -> None:
    assert seen(["127.0.0.1"], "192.0.2.10", FORWARDED) == {"host": "192.0.2.10", "port": 40000, "scheme": "http"}


# --- trusted peers ---------------------------------------------------------------------------------------------------


def test_trusted_peer_forwarded_client_and_scheme_are_used() -> None:
    assert seen(["127.0.0.1"], "127.0.0.1", FORWARDED) == {"host": CLIENT, "port": 0, "scheme": "https"}


def test_trusted_peer_uses_the_rightmost_untrusted_hop_not_the_client_supplied_one() -> None:
    # The client sent "X-Forwarded-For: SPOOF"; its proxy appended what it saw; an inner proxy appended its own peer.
    headers = [("X-Forwarded-For", f"{SPOOF}, {CLIENT}, 10.0.0.5")]
    assert seen(["10.0.0.0/8"], "10.0.0.2", headers)["host"] == CLIENT


def test_several_forwarded_for_headers_are_read_as_one_list() -> None:
    headers = [("X-Forwarded-For", SPOOF), ("X-Forwarded-For", CLIENT)]
    assert seen(["127.0.0.1"], "127.0.0.1", headers)["host"] == CLIENT


def test_every_hop_trusted_falls_back_to_the_first() -> None:
    assert seen(["10.0.0.0/8"], "10.0.0.2", [("X-Forwarded-For", "10.9.9.9, 10.0.0.5")])["host"] == "10.9.9.9"


@pytest.mark.parametrize(("trusted", "peer", "used"), [
    (["10.0.0.0/8"], "10.200.3.4", True),
    (["10.0.0.0/8"], "11.0.0.1", False),
    (["192.168.1.0/24", "127.0.0.1"], "192.168.1.254", True),
    (["192.168.1.0/24", "127.0.0.1"], "192.168.2.1", False),
    (["2001:db8::/32"], "2001:db8:0:1::9", True),
    (["2001:db8::/32"], "2001:db9::1", False),
    (["::1"], "0:0:0:0:0:0:0:1", True),
    ("10.0.0.0/8, 127.0.0.1", "127.0.0.1", True),
])
def test_cidr_and_address_entries(trusted: Sequence[str] | str, peer: str, used: bool) -> None:
    assert (seen(trusted, peer, FORWARDED)["host"] == CLIENT) is used


def test_star_trusts_every_peer_and_so_the_first_hop() -> None:
    """Only for a proxy that replaces X-Forwarded-For: otherwise the client chooses its own address."""
    assert seen(["*"], "192.0.2.10", [("X-Forwarded-For", f"{SPOOF}, {CLIENT}")])["host"] == SPOOF


@pytest.mark.parametrize(("value", "scheme"), [("https", "https"), ("http", "http"), ("javascript", "http"),
                                               ("https, http", "http"), ("", "http")])
def test_only_known_schemes_are_taken_from_forwarded_proto(value: str, scheme: str) -> None:
    assert seen(["127.0.0.1"], "127.0.0.1", [("X-Forwarded-Proto", value)])["scheme"] == scheme


@pytest.mark.parametrize(("value", "host", "port"), [
    ("", "127.0.0.1", 40000),
    (f"{CLIENT}:4711", CLIENT, 4711),
    ("[2001:db8::7]:443", "2001:db8::7", 443),
])
def test_forwarded_for_edge_values(value: str, host: str, port: int) -> None:
    body = seen(["127.0.0.1"], "127.0.0.1", [("X-Forwarded-For", value)])
    assert (body["host"], body["port"]) == (host, port)


def test_lifespan_passes_through_a_trusting_middleware() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("up")
        yield
        events.append("down")

    app = Starlette(lifespan=lifespan, middleware=[Middleware(TrustedProxyMiddleware, trusted=["127.0.0.1"])])
    with TestClient(app):
        assert events == ["up"]
    assert events == ["up", "down"]


# --- configuration ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "parsed"), [
    ("", ()),
    (" , ", ()),
    ("127.0.0.1", ("127.0.0.1",)),
    (" 10.0.0.0/8 ,::1,10.0.0.0/8", ("10.0.0.0/8", "::1")),
    ("2001:DB8:0::/32", ("2001:db8::/32",)),
    ("*", ("*",)),
])
def test_forwarded_allow_ips_parsing(raw: str, parsed: tuple[str, ...]) -> None:
    assert parse_forwarded_allow_ips(raw) == parsed


@pytest.mark.parametrize(("raw", "message"), [
    ("localhost", "does not appear to be an IPv4 or IPv6 address"),
    ("10.0.0.1/8", "has host bits set"),
    ("10.0.0.0/33", "does not appear to be an IPv4 or IPv6 network"),
    ("127.0.0.1,nope", "'nope'"),
    ("*, 10.0.0.1", "'\\*' trusts every peer and cannot be combined"),
    ("10.0.0.*", "'10.0.0.\\*'"),
])
def test_bad_forwarded_allow_ips_is_a_config_error(raw: str, message: str, tmp_path: Path) -> None:
    env = {"INSTANCE_DIR": str(tmp_path), "FORWARDED_ALLOW_IPS": raw}
    with pytest.raises(ConfigError, match=f"^FORWARDED_ALLOW_IPS: .*{message}"):
        load_settings(environ=env, dotenv=tmp_path / "no.env")


def test_forwarded_allow_ips_is_read_from_the_environment(tmp_path: Path) -> None:
    env = {"INSTANCE_DIR": str(tmp_path), "FORWARDED_ALLOW_IPS": "10.0.0.0/8,127.0.0.1"}
    assert load_settings(environ=env, dotenv=tmp_path / "no.env").forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")


def test_a_hand_built_middleware_refuses_bad_entries_too() -> None:
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        TrustedProxyMiddleware(echo_app(()), trusted=["127.0.0.1", "proxy.internal"])
