"""Pydantic schemas of the catalogue."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class CatalogueClassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    major_code: str | None
    name: str
    name_en: str
    is_local: bool
    filing_condition: str | None
    limit_a: Decimal | None
    limit_b: Decimal | None
    limit_c: Decimal | None
    limit_unit: str | None
