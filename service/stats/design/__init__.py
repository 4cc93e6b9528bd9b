"""Design matrices with R's semantics: ``build_design``, ``check_columns``, ``DesignEncoder``."""

from service.stats.design.build import build_design
from service.stats.design.checks import check_columns
from service.stats.design.encoder import DesignEncoder
from service.stats.design.types import Design, RandomBlock

__all__ = ["Design", "DesignEncoder", "RandomBlock", "build_design", "check_columns"]
