"""Import every ORM model so that ``Base.metadata`` knows the whole schema (used by Alembic checks)."""

from gridmap.calendar.models import CalendarDay, WorkingCalendar
from gridmap.cases.models import CaseEvent, CaseFile, IdempotencyKey, Photo
from gridmap.catalogue.models import ComponentClass, EventClass
from gridmap.components.models import Component, ComponentVersion
from gridmap.db.base import Base
from gridmap.departments.models import Department, ResponsibilityRule
from gridmap.roads.models import Road, RoadGrade
from gridmap.territory.models import (
    City,
    Community,
    DataSource,
    District,
    DutyGrid,
    DutyGridInspector,
    DutyGridMember,
    Inspector,
    Street,
    UnitGrid,
)
from gridmap.users.models import ApiToken, AppUser

__all__ = [
    "ApiToken", "AppUser", "Base", "CalendarDay", "CaseEvent", "CaseFile", "IdempotencyKey", "Photo", "City", "Community", "Component", "ComponentClass", "ComponentVersion",
    "DataSource", "Department", "District", "DutyGrid", "DutyGridInspector", "DutyGridMember", "EventClass",
    "Inspector", "ResponsibilityRule", "Road", "RoadGrade", "Street", "UnitGrid", "WorkingCalendar",
]
