"""ORM models of users and their bearer tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import Base, Timestamped

#: inspector 监督员, acceptor 受理员, shift lead 值班长, dispatcher 派遣员, department user 专业部门,
#: supervisor 指挥中心 (sees all), analyst (read-only), admin (manages users)
ROLES = ("inspector", "acceptor", "shift_lead", "dispatcher", "department", "supervisor", "analyst", "admin")


class AppUser(Base, Timestamped):
    """A person who logs in. A department user is bound to one department, an inspector to an
    :class:`~gridmap.territory.models.Inspector` (whose duty grids decide what they see)."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint("role IN ('inspector', 'acceptor', 'shift_lead', 'dispatcher', 'department', "
                        "'supervisor', 'analyst', 'admin')", name="role"),
        CheckConstraint("(role = 'department') = (department_id IS NOT NULL)", name="department_iff_role"),
        CheckConstraint("role = 'inspector' OR inspector_id IS NULL", name="inspector_only"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("inspector.id", ondelete="RESTRICT"))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 only: a leaked table gives no usable token."""

    __tablename__ = "api_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """A failed log-in (wrong name or password): a user name, or a client address, that collects too many of
    them in a while is refused for a while (:func:`gridmap.users.service.issue_token`)."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_name_at", "user_name", "at"),
                      Index("ix_login_failure_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_name: Mapped[str] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
