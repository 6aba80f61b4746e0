"""Production backend: Twilio Verify v2 through the official `twilio` package, fully async."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from webapp.settings import Settings
from webapp.verify.errors import Operation, RateLimited, ServiceUnavailable, VerifyError, error_for, log_provider_error
from webapp.verify.gateway import Channel, CheckResult, Verification
from webapp.verify.locales import verify_locale
from webapp.verify.state import VERIFICATION_SID, code_is_well_formed

log = logging.getLogger("webapp.verify.twilio")
T = TypeVar("T")

# TwilioRestException carries no headers, so the client notes Retry-After per task for the error it becomes.
_retry_after: contextvars.ContextVar[int | None] = contextvars.ContextVar("verify_retry_after", default=None)


class TimedAsyncTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Apply the constructor timeout when a call passes none (twilio-python #925: aiohttp reads None as forever).

    Basic auth goes in as a header because aiohttp 3.14 deprecates `BasicAuth`/`auth=`.
    """

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature twilio's generated code calls
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        response: Response = await super().request(
            method, url, params, data, headers, None, timeout if timeout is not None else self.timeout, allow_redirects
        )
        _retry_after.set(_seconds(response.headers.get("Retry-After")) if response.status_code == 429 else None)
        return response


def _seconds(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _client(settings: Settings, http: TimedAsyncTwilioHttpClient) -> Client:
    if settings.twilio_api_key_sid and settings.twilio_api_key_secret:
        username, password = settings.twilio_api_key_sid, settings.twilio_api_key_secret
    else:
        username, password = settings.twilio_account_sid, settings.twilio_auth_token
    # A non-empty mapping keeps TWILIO_REGION/TWILIO_EDGE in os.environ from rewriting the host.
    return Client(
        username,
        password,
        account_sid=settings.twilio_account_sid,
        http_client=http,
        environment={"APP_ENV": settings.env},
    )


class TwilioVerifyBackend:
    """Owns an aiohttp session: construct inside a running loop and `await close()` when done."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        # Both loggers print URLs and headers at INFO; keep them quiet unless someone debugs on purpose.
        for name in ("twilio.http_client", "twilio.async_http_client"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._http = TimedAsyncTwilioHttpClient(timeout=settings.twilio_timeout_s)
        client = _client(settings, self._http)
        if settings.twilio_verify_base_url:
            client.verify.base_url = settings.twilio_verify_base_url
        self._service = client.verify.v2.services(settings.twilio_verify_service_sid)
        self._friendly_name = settings.verify_friendly_name or None
        self._rate_limit_name = settings.twilio_rate_limit_name or None

    async def close(self) -> None:
        await self._http.close()

    async def start(
        self, to: str, channel: Channel = "sms", *, locale: str | None = None, rate_limit_key: str | None = None
    ) -> Verification:
        optional: dict[str, Any] = {}
        if (verify_locale_tag := verify_locale(locale)) is not None:
            optional["locale"] = verify_locale_tag
        if self._friendly_name:
            optional["custom_friendly_name"] = self._friendly_name
        if self._rate_limit_name and rate_limit_key:
            optional["rate_limits"] = {self._rate_limit_name: rate_limit_key}

        async def send() -> Any:
            return await self._service.verifications.create_async(to=to, channel=channel, **optional)

        try:
            created = await self._call("start", send)
        except RateLimited as exc:
            if exc.code != 20429:
                raise
            # 20429 means Twilio did not process the request, so exactly one retry cannot send twice.
            await asyncio.sleep(secrets.randbelow(1000) / 1000)
            created = await self._call("start", send)
        return Verification(sid=str(created.sid), channel=str(created.channel or channel), status=str(created.status))

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        if not code_is_well_formed(code):
            return CheckResult("pending")
        if not VERIFICATION_SID.match(verification_sid):
            raise error_for("check", 404, 20404)
        checks = self._service.verification_checks
        checked = await self._call("check", lambda: checks.create_async(verification_sid=verification_sid, code=code))
        return CheckResult(str(checked.status))

    async def cancel(self, verification_sid: str) -> None:
        if not VERIFICATION_SID.match(verification_sid):
            return
        try:
            await self._call("cancel", lambda: self._service.verifications(verification_sid).update_async("canceled"))
        except VerifyError as exc:
            if exc.code != 20404:
                raise

    async def _call(self, operation: Operation, call: Callable[[], Awaitable[T]]) -> T:
        _retry_after.set(None)
        status: int | None = None
        try:
            return await call()
        except TwilioRestException as exc:
            status = exc.status
            code = exc.code if isinstance(exc.code, int) else None
            error = error_for(operation, exc.status, code, _retry_after.get())
        except (TwilioException, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: a 2xx whose body is not JSON. TwilioServiceException (RFC 9457 bodies) is a
            # TwilioException sibling of TwilioRestException and lands here too.
            error = ServiceUnavailable(getattr(exc, "code", None) if isinstance(exc, TwilioException) else None)
        if not (operation == "cancel" and error.code == 20404):
            log_provider_error(log, self.name, operation, error, status)
        raise error from None
