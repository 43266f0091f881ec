"""Demo users, one per role, so that `make demo` can be tried at once (never use these passwords for real).

The demo inspector patrols every duty grid of 中正區 (Zhongzheng, around Taipei Main Station); the demo
department user works for 中正區公所, the street office most of that district's event cases go to.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.territory.models import District, DutyGrid, DutyGridInspector, Inspector
from gridmap.users.models import ROLES
from gridmap.users.service import create_user

DEMO_DISTRICT = "630050"  # 中正區
DEMO_INSPECTOR = "I-630050-01"
DEMO_DEPARTMENT = "HW"


@dataclass(frozen=True)
class DemoUser:
    name: str
    role: str
    password: str
    bound_to: str | None


def demo_users(*, session: Session) -> list[DemoUser]:
    """Create (or reset) one user per role; return them with their passwords."""
    inspector_id = _demo_inspector(session)
    users = []
    for role in ROLES:
        name, password = f"demo-{role.replace('_', '-')}", f"{role.replace('_', '-')}-demo"
        department = DEMO_DEPARTMENT if role == "department" else None
        inspector = DEMO_INSPECTOR if role == "inspector" else None
        create_user(session=session, name=name, role=role, password=password, department=department,
                    inspector=inspector, display_name=f"demo {role}", replace=True)
        users.append(DemoUser(name, role, password, department or (inspector and f"{inspector} (中正區 duty grids)")))
    assert inspector_id
    return users


def _demo_inspector(session: Session) -> int:
    session.execute(insert(Inspector).values(code=DEMO_INSPECTOR, name="中正區示范监督员")
                    .on_conflict_do_nothing(index_elements=["code"]))
    inspector_id = session.scalar(select(Inspector.id).where(Inspector.code == DEMO_INSPECTOR))
    grids = select(DutyGrid.id).join(District, District.id == DutyGrid.district_id).where(District.code == DEMO_DISTRICT)
    session.execute(insert(DutyGridInspector).from_select(
        ["duty_grid_id", "inspector_id"], select(grids.subquery().c.id, inspector_id))
        .on_conflict_do_nothing())
    session.flush()
    return inspector_id
