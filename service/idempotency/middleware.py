"""The Idempotency-Key middleware: a POST sent again with the same key and the same request
replays the first answer (status, headers and body) instead of being handled twice.

Per draft-ietf-httpapi-idempotency-key-header, for every POST that carries the header:

- the key is the tenant's (the auth middleware, outside this one, puts the caller's
  ``principal`` in the scope's state; open mode has no tenant); a key is at most 255
  characters of printable ASCII, as a structured-field string (``"..."``) or bare;
- the request is identified by a SHA-256 of its method, path, query, content type and body;
  the same key with another request is a 422 problem, and a request sent while the key's
  first one is still being handled is a 409 problem;
- answers below 500 are kept for ``MIXEDFIT_IDEMPOTENCY_TTL_SECONDS`` (24 h by default) and
  replayed with ``Idempotent-Replayed: true``; a 5xx answer or an error releases the key,
  so the retry is handled anew;
- a claim whose request never finished (its process died) lapses after ``LEASE``; expired
  records count as absent and are deleted lazily, at most once per ``CLEANUP_INTERVAL``.

POSTs without the header, and every other method, pass through untouched.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.principal import principal_of
from service.body import replayed_receive, too_large
from service.db.session import is_database_unavailable
from service.db.storage import is_storage_full
from service.errors import (
    DatabaseUnavailable,
    ServiceError,
    service_error_response,
    storage_full,
)
from service.idempotency import repository
from service.idempotency.repository import Claimed, InProgress, Mismatch, Replay
from service.ops.routes import name_route

logger = logging.getLogger("mixedfit.idempotency")

HEADER = b"idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
MAX_KEY_LENGTH = 255
# a request that holds a key longer than this is taken to have died with its process
LEASE = timedelta(minutes=10)
CLEANUP_INTERVAL_SECONDS = 60.0
# headers of the first answer that describe that one exchange, not the resource
NOT_REPLAYED = frozenset({"date", "server", "x-request-id", "set-cookie", REPLAYED_HEADER})


class InvalidIdempotencyKey(ServiceError):
    status = 400
    slug = "invalid-idempotency-key"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyInUse(ServiceError):
    status = 409
    slug = "idempotency-key-in-use"
    title = "Idempotency-Key in use"
    retry_after_seconds = 1


class IdempotencyKeyReused(ServiceError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused"


def parse_key(values: list[bytes]) -> str:
    """The key of the request's Idempotency-Key header (raises InvalidIdempotencyKey)."""
    if len(values) != 1:
        raise InvalidIdempotencyKey("Send one Idempotency-Key header, not several.")
    raw = values[0].decode("latin-1").strip()
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")  # a structured-field string
    if not raw:
        raise InvalidIdempotencyKey("The Idempotency-Key header is empty.")
    if len(raw) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key is {len(raw)} characters long; at most {MAX_KEY_LENGTH} "
            "are accepted.", max_length=MAX_KEY_LENGTH)
    if not all(" " <= char <= "~" for char in raw):
        raise InvalidIdempotencyKey(
            "The Idempotency-Key may hold printable ASCII characters only.")
    return raw


def tenant_of(scope: Scope) -> str:
    """The caller's tenant as records store it ("" in open mode, where there is none)."""
    principal = principal_of(scope)
    return principal.tenant if principal is not None and principal.tenant is not None else ""


def fingerprint(scope: Scope, content_type: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope.get("raw_path") or scope["path"].encode(),
                 scope.get("query_string", b""), content_type):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    """Replays the first answer to a POST retried with the same Idempotency-Key."""

    def __init__(self, app: ASGIApp, session_factory: Callable[[], sessionmaker[Session] | None],
                 ttl_seconds: float, max_body_bytes: int) -> None:
        self.app = app
        self.session_factory = session_factory
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_body_bytes = max_body_bytes
        self._cleaned_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == HEADER]
        factory = self.session_factory()
        if not values or factory is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, values, factory)
        except ServiceError as error:
            name_route(scope)
            await service_error_response(Request(scope), error)(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, values: list[bytes],
                      factory: sessionmaker[Session]) -> None:
        key = parse_key(values)
        tenant = tenant_of(scope)
        body = await self._read_body(receive)
        content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
        print_ = fingerprint(scope, content_type, body)
        now = datetime.now(UTC)
        outcome = await self._database(repository.claim, factory, tenant, key, print_, now,
                                       LEASE)
        await self._cleanup(factory, now)
        if isinstance(outcome, Mismatch):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a different request (another method, path, "
                "query or body); use a new key for a new request.")
        if isinstance(outcome, InProgress):
            raise IdempotencyKeyInUse(
                "A request with this Idempotency-Key is still being handled; retry when it "
                "has finished to receive its answer.")
        if isinstance(outcome, Replay):
            name_route(scope)
            await _send_replay(outcome, send)
            return
        assert isinstance(outcome, Claimed)
        await self._forward(scope, body, receive, send, factory, tenant, key, outcome.token)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _forward(self, scope: Scope, body: bytes, receive_more: Receive, send: Send,
                       factory: sessionmaker[Session], tenant: str, key: str,
                       token: str) -> None:
        """Handle the request, keep its answer (below 500), then send it."""
        # after the body, the client's own receive: the app learns of a real disconnect
        receive = replayed_receive(body, then=receive_more)
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await self._release(factory, tenant, key, token)
            raise
        if start is None:  # the app sent nothing: nothing to keep
            await self._release(factory, tenant, key, token)
            return
        status = int(start["status"])
        content = b"".join(chunks)
        if status >= 500:
            await self._release(factory, tenant, key, token)
        else:
            headers = [(name.decode("latin-1"), value.decode("latin-1"))
                       for name, value in start.get("headers", [])
                       if name.decode("latin-1").lower() not in NOT_REPLAYED]
            try:
                stored = await run_in_threadpool(
                    repository.complete, factory, tenant, key, token, status, headers,
                    content, datetime.now(UTC) + self.ttl)
                if not stored:
                    logger.warning("Idempotency-Key %r: the claim lapsed before the answer "
                                   "was ready; it is not kept", key)
            except Exception:  # the answer still goes out; a retry will see the claim lapse
                logger.warning("Idempotency-Key %r: the answer could not be stored", key,
                               exc_info=True)
        await send(start)
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _release(self, factory: sessionmaker[Session], tenant: str, key: str,
                       token: str) -> None:
        try:
            await run_in_threadpool(repository.release, factory, tenant, key, token)
        except Exception:  # the claim lapses after LEASE instead
            logger.warning("Idempotency-Key %r could not be released", key, exc_info=True)

    async def _cleanup(self, factory: sessionmaker[Session], now: datetime) -> None:
        clock = time.monotonic()
        if self._cleaned_at is not None and clock - self._cleaned_at < CLEANUP_INTERVAL_SECONDS:
            return
        self._cleaned_at = clock
        try:
            removed = await run_in_threadpool(repository.delete_expired, factory, now)
        except Exception:
            logger.warning("expired idempotency records could not be deleted", exc_info=True)
            return
        if removed:
            logger.info("deleted %d expired idempotency records", removed)

    @staticmethod
    async def _database(function: Callable[..., repository.Outcome], *args: object
                        ) -> repository.Outcome:
        try:
            return await run_in_threadpool(function, *args)
        except (DBAPIError, PoolTimeout) as error:
            if is_storage_full(error):  # the claim is a write: 507 on a full disk
                raise storage_full(error, "an Idempotency-Key claim") from None
            if not is_database_unavailable(error):
                raise
            raise DatabaseUnavailable(
                "The database is unavailable; retry the request shortly.") from None


async def _send_replay(replay: Replay, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1"))
               for name, value in replay.headers]
    headers.append((REPLAYED_HEADER.encode(), b"true"))
    await send({"type": "http.response.start", "status": replay.status, "headers": headers})
    await send({"type": "http.response.body", "body": replay.body, "more_body": False})
