"""The query of a list route, as one pydantic model that forbids unknown parameters: a
misspelt filter (``?stauts=failed``) is a 422 naming it, not silently the whole list."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.datasets.schemas import MAX_OFFSET


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000, description="Items per page")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Items to skip")
