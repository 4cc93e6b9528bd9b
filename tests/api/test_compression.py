"""Large answers are compressed as the client's Accept-Encoding prefers: zstd, gzip or not
at all (service.ops.compression), with the same content whichever coding carries it."""

from __future__ import annotations

import io
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from service.models.prediction_output import PARQUET
from service.ops.compression import CompressionMiddleware, choose_coding
from tests.api.conftest import ClientFactory
from tests.api.fitting import fit_sleepstudy


@pytest.mark.parametrize(("header", "coding"), [
    (None, "identity"),
    ("", "identity"),
    ("identity", "identity"),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("zstd", "zstd"),
    ("gzip, deflate, zstd", "zstd"),          # httpx with zstandard installed
    ("gzip, deflate, br, zstd", "zstd"),      # Chrome
    ("gzip;q=1, zstd;q=0.5", "gzip"),         # the client's weights decide
    ("GZIP;Q=0.5, ZSTD;q=0.4", "gzip"),       # names and parameters in any case
    ("gzip;q=0.5, zstd;q=0.5", "zstd"),       # a tie: the server's preference
    ("zstd;q=0, gzip", "gzip"),               # q=0 refuses a coding
    ("zstd;q=0, gzip;q=0", "identity"),
    ("*", "zstd"),
    ("*;q=0.3, gzip", "gzip"),
    ("zstd;q=zero, gzip;q=0.1", "gzip"),      # an unreadable weight accepts nothing
    ("br", "identity"),                        # only codings this server has count
])
def test_the_coding_follows_accept_encoding(header: str | None, coding: str) -> None:
    assert choose_coding(header) == coding


@pytest.fixture
def model(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client(embedded_worker=True)
    return client, f"/v1/models/{fit_sleepstudy(client)}/predictions"


def _body(rows: int) -> dict[str, Any]:
    return {"columns": {"Days": [d / 10 for d in range(rows)], "Subject": [308] * rows}}


def test_a_large_answer_is_the_same_in_every_coding(model: tuple[TestClient, str]) -> None:
    client, url = model
    body = _body(5000)
    plain = client.post(url, json=body, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200, plain.text
    assert "content-encoding" not in plain.headers
    for accept, coding in (("zstd", "zstd"), ("gzip", "gzip"), ("gzip, zstd", "zstd"),
                           ("zstd;q=0.1, gzip", "gzip")):
        answer = client.post(url, json=body, headers={"Accept-Encoding": accept})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-encoding"] == coding, accept
        assert "accept-encoding" in answer.headers["vary"].lower()
        # compressed on the wire, the same bytes once decoded
        assert answer.num_bytes_downloaded < len(plain.content) / 1.5
        assert answer.content == plain.content, accept


def test_zstd_frames_decode_with_the_reference_library(model: tuple[TestClient, str]) -> None:
    client, url = model
    plain = client.post(url, json=_body(3000), headers={"Accept-Encoding": "identity"})
    with client.stream("POST", url, json=_body(3000),
                       headers={"Accept-Encoding": "zstd"}) as answer:
        raw = b"".join(answer.iter_raw())
    assert zstandard.ZstdDecompressor().decompressobj().decompress(raw) == plain.content


def test_small_and_parquet_answers_are_sent_as_they_are(
        model: tuple[TestClient, str]) -> None:
    client, url = model
    small = client.post(url, json=_body(2), headers={"Accept-Encoding": "zstd"})
    assert small.status_code == 200 and "content-encoding" not in small.headers
    parquet = client.post(url, json=_body(5000), headers={
        "Accept": PARQUET, "Accept-Encoding": "zstd, gzip"})
    assert parquet.status_code == 200 and "content-encoding" not in parquet.headers
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 5000


async def _chunks() -> AsyncIterator[bytes]:
    for i in range(40):
        yield (f"line {i} " * 200 + "\n").encode()


async def _streamed(_request: Request) -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="text/plain")


@pytest.mark.parametrize("accept", ["zstd", "gzip"])
def test_a_streamed_answer_is_compressed_part_by_part(accept: str) -> None:
    app = CompressionMiddleware(Starlette(routes=[Route("/", _streamed)]), minimum_size=1024)
    want = b"".join((f"line {i} " * 200 + "\n").encode() for i in range(40))
    with TestClient(app) as client, client.stream(
            "GET", "/", headers={"Accept-Encoding": accept}) as answer:
        assert answer.headers["content-encoding"] == accept
        assert "content-length" not in answer.headers
        raw = b"".join(answer.iter_raw())
    decoded = (zstandard.ZstdDecompressor().decompressobj().decompress(raw) if accept == "zstd"
               else zlib.decompress(raw, 16 + zlib.MAX_WBITS))
    assert decoded == want
    assert len(raw) < len(want) / 10
