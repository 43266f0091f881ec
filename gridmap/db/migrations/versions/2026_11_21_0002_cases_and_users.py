"""cases and users: app users and tokens, case files, append-only case events, photos, idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 04:05:26.924408
"""

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The audit trail is append-only: no role, not even the application's own, may change or remove an event.
APPEND_ONLY = """
CREATE FUNCTION case_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event
    FOR EACH ROW EXECUTE FUNCTION case_event_append_only();
CREATE TRIGGER case_event_no_truncate BEFORE TRUNCATE ON case_event
    FOR EACH STATEMENT EXECUTE FUNCTION case_event_append_only();
"""


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('inspector_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(role = 'department') = (department_id IS NOT NULL)", name=op.f('ck_app_user_department_iff_role')),
    sa.CheckConstraint("role = 'inspector' OR inspector_id IS NULL", name=op.f('ck_app_user_inspector_only')),
    sa.CheckConstraint("role IN ('inspector', 'acceptor', 'shift_lead', 'dispatcher', 'department', 'supervisor', 'analyst', 'admin')", name=op.f('ck_app_user_role')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_app_user_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['inspector_id'], ['inspector.id'], name=op.f('fk_app_user_inspector_id_inspector'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('name', name=op.f('uq_app_user_name'))
    )
    op.create_table('api_token',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_api_token_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_api_token'))
    )
    op.create_index(op.f('ix_api_token_user_id'), 'api_token', ['user_id'], unique=False)
    op.create_table('case_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('case_type', sa.String(length=9), nullable=False),
    sa.Column('class_code', sa.String(length=4), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('reported_x', sa.Float(), nullable=True),
    sa.Column('reported_y', sa.Float(), nullable=True),
    sa.Column('reported_crs', sa.Text(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('unit_grid', sa.String(length=15), nullable=False),
    sa.Column('duty_grid', sa.String(length=32), nullable=True),
    sa.Column('community', sa.String(length=12), nullable=True),
    sa.Column('street', sa.String(length=9), nullable=True),
    sa.Column('district', sa.String(length=6), nullable=True),
    sa.Column('area_class', sa.String(length=1), nullable=True),
    sa.Column('road_id', sa.Text(), nullable=True),
    sa.Column('component_id', sa.String(length=16), nullable=True),
    sa.Column('component_version', sa.Integer(), nullable=True),
    sa.Column('proposed_department', sa.String(length=32), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('rule', sa.String(length=32), nullable=True),
    sa.Column('ambiguous', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('ambiguity_reason', sa.Text(), nullable=True),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('duplicate_candidates', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('stage_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_warn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_limit', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('time_limit_unit', sa.String(length=4), nullable=True),
    sa.Column('disposal_limit_min', sa.Float(), nullable=True),
    sa.Column('disposal_used_min', sa.Float(), server_default='0', nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('clock_resumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disposal_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extension_requested_min', sa.Float(), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rework_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('return_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_kind', sa.String(length=8), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("case_type IN ('component', 'event')", name=op.f('ck_case_file_case_type')),
    sa.CheckConstraint("source IN ('inspector', 'hotline', 'self_disposal', 'import')", name=op.f('ck_case_file_source')),
    sa.CheckConstraint("status IN ('reported', 'verifying', 'accepted', 'filed', 'dispatched', 'returned', 'parked', 'handled', 'checked', 'closed', 'rejected', 'voided', 'merged')", name=op.f('ck_case_file_status')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['case_file.id'], name=op.f('fk_case_file_merged_into_id_case_file'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reporter_id'], ['app_user.id'], name=op.f('fk_case_file_reporter_id_app_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_file')),
    sa.UniqueConstraint('number', name=op.f('uq_case_file_number'))
    )
    op.create_index(op.f('ix_case_file_department'), 'case_file', ['department'], unique=False)
    op.create_index('ix_case_file_geom', 'case_file', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_case_file_open', 'case_file', ['status', 'stage_deadline'], unique=False, postgresql_where="status NOT IN ('closed', 'rejected', 'voided', 'merged')")
    op.create_index(op.f('ix_case_file_reporter_id'), 'case_file', ['reporter_id'], unique=False)
    op.create_index(op.f('ix_case_file_unit_grid'), 'case_file', ['unit_grid'], unique=False)
    op.create_table('photo',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by'], ['app_user.id'], name=op.f('fk_photo_uploaded_by_app_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_photo'))
    )
    op.create_table('case_event',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=16), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('photos', postgresql.ARRAY(sa.String(length=64)), server_default='{}', nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_case_event_actor_id_app_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_case_event_case_id_case_file'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_event'))
    )
    op.create_index(op.f('ix_case_event_case_id'), 'case_event', ['case_id'], unique=False)
    op.execute(APPEND_ONLY)
    op.create_table('idempotency_key',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_idempotency_key_case_id_case_file'), ondelete='RESTRICT', initially='DEFERRED', deferrable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_idempotency_key_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'key', name=op.f('pk_idempotency_key'))
    )


def downgrade() -> None:
    op.drop_table('idempotency_key')
    op.execute("DROP TRIGGER case_event_no_truncate ON case_event; DROP TRIGGER case_event_append_only ON case_event; "
               "DROP FUNCTION case_event_append_only()")
    op.drop_index(op.f('ix_case_event_case_id'), table_name='case_event')
    op.drop_table('case_event')
    op.drop_table('photo')
    op.drop_index(op.f('ix_case_file_unit_grid'), table_name='case_file')
    op.drop_index(op.f('ix_case_file_reporter_id'), table_name='case_file')
    op.drop_index('ix_case_file_open', table_name='case_file', postgresql_where="status NOT IN ('closed', 'rejected', 'voided', 'merged')")
    op.drop_index('ix_case_file_geom', table_name='case_file', postgresql_using='gist')
    op.drop_index(op.f('ix_case_file_department'), table_name='case_file')
    op.drop_table('case_file')
    op.drop_index(op.f('ix_api_token_user_id'), table_name='api_token')
    op.drop_table('api_token')
    op.drop_table('app_user')
