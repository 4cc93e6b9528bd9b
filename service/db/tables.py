"""Every table's row class, imported in one place, so that ``Base.metadata`` knows them all
wherever the schema is compared with the migrations (Alembic's autogenerate, the tests):
some live in modules of their own (intervals, batches, the registry)."""

from __future__ import annotations

from service.db import batches, inference, registry  # noqa: F401 - their tables, registered
from service.db.models import Base

__all__ = ["Base"]
