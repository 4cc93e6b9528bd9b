"""Models as a registry (issue 13): registered names with numbered versions, aliases, tags.

``registered_models`` holds each tenant's names and the counter of their versions;
``model_aliases`` the movable pointers to a version. ``models`` gains
``registered_model_id`` and ``version`` (one model per version of a name), ``tags`` and
``tags_revision``.

Models stored before this revision had a free-text name. Those whose name is a valid
registry name (``[A-Za-z0-9][A-Za-z0-9._-]{0,99}``) are registered here: versions 1, 2, 3
... of their name per tenant, in the order they were created. The others keep their name
as a free-text label with no version: they are not in the registry and cannot be reached
by ``name@version``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as service.registry.names.NAME and service.db.registry.registered_model_id, copied: a
# migration must not change when the code does
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAMESPACE = uuid.UUID("5b0b2d1e-8f0c-4c1e-9a53-2f4f6f1f0d13")


def upgrade() -> None:
    # timestamps as in 0001: service.db.models.UTCDateTime stores UTC in a timezone column
    op.create_table(
        "registered_models",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_registered_models_tenant", "registered_models", ["tenant"])
    op.create_index("ix_registered_models_name", "registered_models", ["name"])
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("registered_model_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("tags_revision", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
        batch.create_unique_constraint("uq_models_registered_model_id_version",
                                       ["registered_model_id", "version"])
    op.create_table(
        "model_aliases",
        sa.Column("registered_model_id", sa.String(length=36), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registered_model_id"], ["registered_models.id"],
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"]),
        sa.PrimaryKeyConstraint("registered_model_id", "alias"),
    )
    op.create_index("ix_model_aliases_tenant", "model_aliases", ["tenant"])
    op.create_index("ix_model_aliases_model_id", "model_aliases", ["model_id"])
    _register_existing_names()


def _register_existing_names() -> None:
    """Number the existing models with a valid registry name, per tenant and name, in the
    order they were created."""
    bind = op.get_bind()
    models = sa.table("models", sa.column("id"), sa.column("tenant"), sa.column("name"),
                      sa.column("created_at"), sa.column("registered_model_id"),
                      sa.column("version"))
    registered = sa.table("registered_models", sa.column("id"), sa.column("tenant"),
                          sa.column("name"), sa.column("latest_version"),
                          sa.column("created_at", sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(models.c.id, models.c.tenant, models.c.name)
                        .where(models.c.name.is_not(None))
                        .order_by(models.c.created_at, models.c.id)).all()
    counts: dict[tuple[str | None, str], int] = {}
    for model_id, tenant, name in rows:
        if NAME.fullmatch(name) is None:
            continue
        version = counts[(tenant, name)] = counts.get((tenant, name), 0) + 1
        bind.execute(models.update().where(models.c.id == model_id).values(
            registered_model_id=_registered_id(tenant, name), version=version))
    now = datetime.now(UTC)
    for (tenant, name), latest in counts.items():
        bind.execute(registered.insert().values(
            id=_registered_id(tenant, name), tenant=tenant, name=name, latest_version=latest,
            created_at=now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now))


def _registered_id(tenant: str | None, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{tenant or ''}\x00{name}"))


def downgrade() -> None:
    op.drop_index("ix_model_aliases_model_id", table_name="model_aliases")
    op.drop_index("ix_model_aliases_tenant", table_name="model_aliases")
    op.drop_table("model_aliases")
    with op.batch_alter_table("models") as batch:
        batch.drop_constraint("uq_models_registered_model_id_version", type_="unique")
        batch.drop_column("tags_revision")
        batch.drop_column("tags")
        batch.drop_column("version")
        batch.drop_column("registered_model_id")
    op.drop_index("ix_registered_models_name", table_name="registered_models")
    op.drop_index("ix_registered_models_tenant", table_name="registered_models")
    op.drop_table("registered_models")
