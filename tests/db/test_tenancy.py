"""Sessions scoped to a caller see and change their tenant's rows only, whatever the query
(SQLite and PostgreSQL); unscoped sessions (workers, metrics) and admins see every row."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.auth.principal import ANONYMOUS, OPEN, Principal
from service.datasets.repository import add_dataset, get_dataset, list_datasets
from service.db.models import DatasetRow, JobRow, ModelRow
from service.db.tenancy import scope_session
from service.jobs.repository import enqueue
from service.models.repository import add_model, get_model, list_models
from tests.db.factories import DATA, dataset_row, model_row

SessionFactory = sessionmaker[Session]
A = Principal(tenant="a", admin=False, key_id="key-a")
B = Principal(tenant="b", admin=False, key_id="key-b")
ADMIN = Principal(tenant="ops", admin=True, key_id="key-ops")


def store(session_factory: SessionFactory, principal: Principal) -> tuple[str, str, str]:
    """A dataset, a model on it and its job, created by ``principal``: their ids."""
    frame = pd.read_csv(DATA / "mood.csv").head(20)
    with scope_session(session_factory(), principal) as session, session.begin():
        dataset = add_dataset(session, dataset_row(frame))
        model = add_model(session, model_row(dataset.id, "Mood ~ Exercise", kind="lm"))
        job = enqueue(session, "fit", model.id, 3)
        return dataset.id, model.id, job.id


def test_rows_are_stamped_with_their_creators_tenant(session_factory: SessionFactory) -> None:
    ids = {principal: store(session_factory, principal) for principal in (A, ADMIN, OPEN)}
    with session_factory() as session:
        for principal, (dataset_id, model_id, job_id) in ids.items():
            tenants = {session.get(cls, row_id).tenant
                       for cls, row_id in ((DatasetRow, dataset_id), (ModelRow, model_id),
                                           (JobRow, job_id))}
            assert tenants == {principal.tenant}


def test_a_tenant_never_finds_anothers_rows(session_factory: SessionFactory) -> None:
    data_a, model_a, job_a = store(session_factory, A)
    data_b, model_b, _ = store(session_factory, B)
    with scope_session(session_factory(), B) as session:
        assert get_dataset(session, data_a) is None
        assert get_dataset(session, data_a, with_content=True) is None
        assert get_model(session, model_a) is None
        assert session.get(JobRow, job_a) is None
        assert [r.id for r in list_datasets(session, 10, 0)[0]] == [data_b]
        assert list_datasets(session, 10, 0)[1] == 1
        assert list_models(session, 10, 0, dataset_id=data_a) == ([], 0)
        assert session.scalar(select(func.count()).select_from(ModelRow)) == 1
        # nor change or delete them, in bulk statements either
        assert session.execute(update(ModelRow).values(name="mine")).rowcount == 1
        assert session.execute(delete(DatasetRow).where(DatasetRow.id == data_a)
                               ).rowcount == 0
        session.commit()
    with session_factory() as session:
        assert get_dataset(session, data_a) is not None
        names = dict(session.execute(select(ModelRow.id, ModelRow.name)).all())
        assert names == {model_a: None, model_b: "mine"}


def test_admins_and_unscoped_sessions_see_every_tenant(session_factory: SessionFactory
                                                       ) -> None:
    store(session_factory, A)
    store(session_factory, B)
    for session in (scope_session(session_factory(), ADMIN), session_factory()):
        with session:
            assert list_datasets(session, 10, 0)[1] == 2
            assert session.scalar(select(func.count()).select_from(JobRow)) == 2


def test_a_caller_without_a_tenant_sees_nothing(session_factory: SessionFactory) -> None:
    store(session_factory, OPEN)  # open mode: untenanted rows
    store(session_factory, A)
    with scope_session(session_factory(), ANONYMOUS) as session:
        assert list_datasets(session, 10, 0) == ([], 0)
    with scope_session(session_factory(), OPEN) as session:
        assert list_datasets(session, 10, 0)[1] == 2


def test_a_tenants_key_cannot_create_for_another(session_factory: SessionFactory) -> None:
    frame = pd.read_csv(DATA / "mood.csv").head(5)
    with scope_session(session_factory(), A) as session, session.begin():
        row = dataset_row(frame)
        row.tenant = "b"
        add_dataset(session, row)
    with session_factory() as session:
        assert session.get(DatasetRow, row.id).tenant == "a"
