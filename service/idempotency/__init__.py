"""Idempotency-Key on POST (draft-ietf-httpapi-idempotency-key-header): a retried request
replays the first answer instead of doing the work again."""

from service.idempotency.middleware import IdempotencyMiddleware

__all__ = ["IdempotencyMiddleware"]
