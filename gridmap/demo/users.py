"""Demo users, one per role, so that `make demo` can be tried at once (never use these passwords for real),
and the staff of the demo case history (:func:`demo_staff`).

The demo inspector patrols every duty grid of 中正區 (Zhongzheng, around Taipei Main Station); the demo
department user works for 环境保护局 (HW), where most of the city's garbage cases go.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.departments.models import Department
from gridmap.territory.models import District, DutyGrid, DutyGridInspector, Inspector
from gridmap.users.models import ROLES, AppUser
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


# -- the staff of the demo history ---------------------------------------------------------------------
#: the command centre's people in the demo history: two of each desk (the first is the one-per-role demo user)
CENTRE = {"acceptor": 2, "shift_lead": 2, "dispatcher": 2, "supervisor": 1}


@dataclass(frozen=True)
class Staff:
    """Who works the demo history, by user name: the centre's desks, an inspector per district (and the
    duty grids they patrol), one user per department."""

    centre: dict[str, tuple[str, ...]]  # role → user names
    inspector_of_duty_grid: dict[str, str]  # duty grid code → the inspector user who patrols it
    inspector_of_district: dict[str, str]  # district code → inspector user
    department_user: dict[str, str]  # department code → user name


def demo_staff(*, session: Session) -> Staff:
    """Create what the demo history needs and is missing: an inspector per district patrolling all its
    duty grids (中正區's is the demo inspector), two acceptors, shift leads and dispatchers, a supervisor
    and a user per department, with the demo passwords (``<role>-demo``). Existing users are kept as they
    are, so running it again changes nothing.

    Returns
    -------
    Staff
        The user names by centre desk, duty grid, district and department.
    """
    existing = set(session.scalars(select(AppUser.name)))

    def user(name: str, role: str, **bound) -> str:
        if name not in existing:
            create_user(session=session, name=name, role=role, password=f"{role.replace('_', '-')}-demo",
                        display_name=name, **bound)
            existing.add(name)
        return name

    centre = {role: tuple(user(_name(role, i), role) for i in range(1, count + 1)) for role, count in CENTRE.items()}
    by_district, by_grid = {}, {}
    for code, name in session.execute(select(District.code, District.name).order_by(District.code)):
        inspector = DEMO_INSPECTOR if code == DEMO_DISTRICT else f"I-{code}-01"
        _patrol(session, inspector, f"{name}监督员", code)
        by_district[code] = user("demo-inspector" if code == DEMO_DISTRICT else f"demo-inspector-{code}",
                                 "inspector", inspector=inspector)
    grids = select(DutyGrid.code, District.code).join(District, District.id == DutyGrid.district_id)
    for grid, district in session.execute(grids):
        by_grid[grid] = by_district[district]
    departments = {code: user("demo-department" if code == DEMO_DEPARTMENT else f"demo-department-{code.lower()}",
                              "department", department=code)
                   for code in session.scalars(select(Department.code).order_by(Department.code))}
    return Staff(centre, by_grid, by_district, departments)


def _name(role: str, index: int) -> str:
    base = f"demo-{role.replace('_', '-')}"
    return base if index == 1 else f"{base}-{index}"


def _patrol(session: Session, code: str, name: str, district: str) -> None:
    """The inspector ``code`` (created if missing) patrols every duty grid of ``district``."""
    session.execute(insert(Inspector).values(code=code, name=name).on_conflict_do_nothing(index_elements=["code"]))
    inspector_id = session.scalar(select(Inspector.id).where(Inspector.code == code))
    grids = select(DutyGrid.id, literal(inspector_id)).join(District, District.id == DutyGrid.district_id) \
        .where(District.code == district)
    session.execute(insert(DutyGridInspector).from_select(["duty_grid_id", "inspector_id"], grids)
                    .on_conflict_do_nothing())
