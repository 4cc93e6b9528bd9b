"""SharedReads: callers asking for one key while its read runs share that read; a caller
that goes away does not take the read from the others; different keys (another tenant's
scope) never share."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.auth.principal import Principal
from service.models.shared_reads import SharedReads, scope_of


def test_concurrent_callers_share_one_read_and_later_ones_read_again() -> None:
    reads: list[int] = []

    def read() -> int:
        time.sleep(0.05)
        reads.append(1)
        return len(reads)

    async def main() -> tuple[list[int], int]:
        shared: SharedReads[int] = SharedReads()
        together = await asyncio.gather(*(shared.read("m1", read) for _ in range(50)))
        later = await shared.read("m1", read)  # the first read had ended: a new one
        return list(together), later

    together, later = asyncio.run(main())
    assert together == [1] * 50 and later == 2 and len(reads) == 2


def test_a_caller_that_leaves_does_not_cancel_the_read_of_the_others() -> None:
    started = threading.Event()

    def read() -> str:
        started.set()
        time.sleep(0.1)
        return "row"

    async def main() -> str:
        shared: SharedReads[str] = SharedReads()
        first = asyncio.ensure_future(shared.read("m1", read))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(shared.read("m1", read))
        await asyncio.sleep(0.01)
        first.cancel()  # its client left
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(main()) == "row"


def test_an_error_reaches_every_caller_and_keys_are_apart() -> None:
    def missing() -> str:
        time.sleep(0.02)
        raise LookupError("no such model")

    async def main() -> tuple[list[object], str]:
        shared: SharedReads[str] = SharedReads()
        errors = await asyncio.gather(*(shared.read("gone", missing) for _ in range(5)),
                                      return_exceptions=True)
        other = await shared.read("here", lambda: "row")
        return list(errors), other

    errors, other = asyncio.run(main())
    assert all(isinstance(e, LookupError) for e in errors) and other == "row"


def test_the_scope_of_a_tenant_is_not_an_admins_nor_another_tenants() -> None:
    acme, beta = Principal("acme", False, "k1"), Principal("beta", False, "k2")
    admin = Principal("ops", True, "k3")
    assert scope_of(acme) == scope_of(Principal("acme", False, "k9"))  # same rows
    assert len({scope_of(acme), scope_of(beta), scope_of(admin)}) == 3
