"""Long polls on an unfinished model share their reads: polls that arrive together share
one read of its status, a wait that times out reads nothing more, and the document they
are answered with is read once for all whose waits end together (500 polls on SQLite
each read the status twice, on a 2-core machine's threadpool)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import DATA, ClientFactory
from tests.api.statements import model_reads

POLLS = 24


def test_polls_that_time_out_together_share_their_reads(make_client: ClientFactory) -> None:
    client = make_client()  # no worker: the fit stays queued through the polls
    dataset = client.post("/v1/datasets", content=(DATA / "sleepstudy.csv").read_bytes(),
                          headers={"Content-Type": "text/csv"}).json()["id"]
    model = client.post("/v1/models", json={
        "dataset_id": dataset, "formula": "Reaction ~ Days + (Days | Subject)"}).json()
    url = f"/v1/models/{model['id']}"
    with model_reads(client.app) as reads, ThreadPoolExecutor(POLLS) as pool:
        answers = list(pool.map(lambda _: client.get(url, params={"wait": 1.5}),
                                range(POLLS)))
    assert [a.status_code for a in answers] == [200] * POLLS
    assert {a.json()["status"] for a in answers} == {"queued"}
    selects = [s for s in reads if s.lstrip().startswith("SELECT") and "FROM models" in s]
    documents = [s for s in selects if "models.result" in s]
    statuses = [s for s in selects if "models.result" not in s]
    # each poll reads the status at most once (on arrival, shared with those arriving
    # meanwhile), never again at its timeout (it read it twice), and its document at most
    # once (shared by waits that end together; how many do here depends on the timing)
    assert 1 <= len(statuses) <= POLLS, len(statuses)
    assert 1 <= len(documents) <= POLLS, len(documents)
    # a plain read afterwards is read on its own, and sees the model as it is
    assert client.get(url).json()["status"] == "queued"
