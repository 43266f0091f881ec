"""platform schema: territory, catalogue, roads, components (versioned), departments, rules, calendar

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 01:38:22.110024
"""

from alembic import op
import geoalchemy2
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# Every attribute change of a component raises its version and keeps the old state in component_version.
_STATE = [
    "code", "class_code", "name", "competent_department_id", "owner_department_id", "maintainer_department_id",
    "status", "survey_date", "change_date", "source", "source_id", "note", "geom",
]
STATE_COLUMNS = ", ".join(_STATE)
NEW_STATE = ", ".join(f"NEW.{column}" for column in _STATE)
COMPONENT_VERSIONING = f'''
CREATE FUNCTION component_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.class_code, NEW.name, NEW.competent_department_id, NEW.owner_department_id,
        NEW.maintainer_department_id, NEW.status, NEW.survey_date, NEW.source, NEW.source_id, NEW.note,
        ST_AsEWKB(NEW.geom))
       IS DISTINCT FROM
       (OLD.class_code, OLD.name, OLD.competent_department_id, OLD.owner_department_id,
        OLD.maintainer_department_id, OLD.status, OLD.survey_date, OLD.source, OLD.source_id, OLD.note,
        ST_AsEWKB(OLD.geom))
    THEN
        NEW.version := OLD.version + 1;
        IF NEW.change_date IS NOT DISTINCT FROM OLD.change_date THEN
            NEW.change_date := CURRENT_DATE;
        END IF;
    ELSE
        NEW.version := OLD.version;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION component_keep_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.version = OLD.version THEN
            RETURN NULL;
        END IF;
        UPDATE component_version SET valid_to = now() WHERE component_id = NEW.id AND valid_to IS NULL;
    END IF;
    INSERT INTO component_version (component_id, version, valid_from, valid_to, {STATE_COLUMNS})
    VALUES (NEW.id, NEW.version, now(), NULL, {NEW_STATE});
    RETURN NULL;
END $$;

CREATE TRIGGER component_next_version BEFORE UPDATE ON component
    FOR EACH ROW EXECUTE FUNCTION component_next_version();
CREATE TRIGGER component_keep_version AFTER INSERT OR UPDATE ON component
    FOR EACH ROW EXECUTE FUNCTION component_keep_version();
'''


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('city',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('metric_srid', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.Text(), server_default='Asia/Shanghai', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_city_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_city'))
    )
    op.create_table('component_class',
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('major_code', sa.String(length=2), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('is_local', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('filing_condition', sa.Text(), nullable=True),
    sa.Column('limit_a', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_b', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_c', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_unit', sa.String(length=4), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{2}([0-9]{2})?$'", name=op.f('ck_component_class_code_format')),
    sa.CheckConstraint("limit_unit IS NULL OR limit_unit IN ('hour', 'day')", name=op.f('ck_component_class_limit_unit')),
    sa.CheckConstraint('length(code) = 2 OR (major_code = left(code, 2) AND limit_a IS NOT NULL AND limit_b IS NOT NULL AND limit_c IS NOT NULL AND limit_unit IS NOT NULL)', name=op.f('ck_component_class_minor_complete')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_component_class'))
    )
    op.create_table('data_source',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('licence', sa.Text(), nullable=False),
    sa.Column('attribution', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_data_source'))
    )
    op.create_table('district',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('source_code', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{6}$'", name=op.f('ck_district_code_format')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_district')),
    sa.UniqueConstraint('code', name=op.f('uq_district_code'))
    )
    op.create_index('ix_district_geom', 'district', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('event_class',
    sa.Column('road_bound', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('major_code', sa.String(length=2), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('is_local', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('filing_condition', sa.Text(), nullable=True),
    sa.Column('limit_a', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_b', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_c', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('limit_unit', sa.String(length=4), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{2}([0-9]{2})?$'", name=op.f('ck_event_class_code_format')),
    sa.CheckConstraint("limit_unit IS NULL OR limit_unit IN ('hour', 'day')", name=op.f('ck_event_class_limit_unit')),
    sa.CheckConstraint('length(code) = 2 OR (major_code = left(code, 2) AND limit_a IS NOT NULL AND limit_b IS NOT NULL AND limit_c IS NOT NULL AND limit_unit IS NOT NULL)', name=op.f('ck_event_class_minor_complete')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_event_class'))
    )
    op.create_table('inspector',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspector')),
    sa.UniqueConstraint('code', name=op.f('uq_inspector_code'))
    )
    op.create_table('road_grade',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_road_grade')),
    sa.UniqueConstraint('rank', name=op.f('uq_road_grade_rank'))
    )
    op.create_table('working_calendar',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('timezone', sa.Text(), nullable=False),
    sa.Column('weekdays', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('windows', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_working_calendar'))
    )
    op.create_table('calendar_day',
    sa.Column('calendar_code', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_working', sa.Boolean(), nullable=False),
    sa.Column('windows', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['calendar_code'], ['working_calendar.code'], name=op.f('fk_calendar_day_calendar_code_working_calendar'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('calendar_code', 'day', name=op.f('pk_calendar_day'))
    )
    op.create_table('duty_grid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_duty_grid_district_id_district'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_grid')),
    sa.UniqueConstraint('code', name=op.f('uq_duty_grid_code'))
    )
    op.create_table('street',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=9), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.Column('source_code', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{9}$'", name=op.f('ck_street_code_format')),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_street_district_id_district'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_street')),
    sa.UniqueConstraint('code', name=op.f('uq_street_code'))
    )
    op.create_index(op.f('ix_street_district_id'), 'street', ['district_id'], unique=False)
    op.create_index('ix_street_geom', 'street', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('community',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('source_code', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{12}$'", name=op.f('ck_community_code_format')),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_community_district_id_district'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['street_id'], ['street.id'], name=op.f('fk_community_street_id_street'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_community')),
    sa.UniqueConstraint('code', name=op.f('uq_community_code'))
    )
    op.create_index(op.f('ix_community_district_id'), 'community', ['district_id'], unique=False)
    op.create_index('ix_community_geom', 'community', ['geom'], unique=False, postgresql_using='gist')
    op.create_index(op.f('ix_community_street_id'), 'community', ['street_id'], unique=False)
    op.create_table('department',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('professional', 'street_office', 'owner')", name=op.f('ck_department_kind')),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_department_district_id_district'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['street_id'], ['street.id'], name=op.f('fk_department_street_id_street'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department')),
    sa.UniqueConstraint('code', name=op.f('uq_department_code'))
    )
    op.create_index(op.f('ix_department_district_id'), 'department', ['district_id'], unique=False)
    op.create_index(op.f('ix_department_street_id'), 'department', ['street_id'], unique=False)
    op.create_table('duty_grid_inspector',
    sa.Column('duty_grid_id', sa.Integer(), nullable=False),
    sa.Column('inspector_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['duty_grid_id'], ['duty_grid.id'], name=op.f('fk_duty_grid_inspector_duty_grid_id_duty_grid'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inspector_id'], ['inspector.id'], name=op.f('fk_duty_grid_inspector_inspector_id_inspector'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('duty_grid_id', 'inspector_id', name=op.f('pk_duty_grid_inspector'))
    )
    op.create_table('duty_grid_member',
    sa.Column('unit_grid_code', sa.String(length=15), nullable=False),
    sa.Column('duty_grid_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['duty_grid_id'], ['duty_grid.id'], name=op.f('fk_duty_grid_member_duty_grid_id_duty_grid'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_grid_code', name=op.f('pk_duty_grid_member'))
    )
    op.create_index(op.f('ix_duty_grid_member_duty_grid_id'), 'duty_grid_member', ['duty_grid_id'], unique=False)
    op.create_table('component',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('class_code', sa.String(length=4), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('competent_department_id', sa.Integer(), nullable=True),
    sa.Column('owner_department_id', sa.Integer(), nullable=True),
    sa.Column('maintainer_department_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Text(), server_default='完好', nullable=False),
    sa.Column('survey_date', sa.Date(), nullable=True),
    sa.Column('change_date', sa.Date(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('source_id', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{16}$'", name=op.f('ck_component_code_format')),
    sa.CheckConstraint("status IN ('完好', '破损', '丢失', '废弃', '移除')", name=op.f('ck_component_status')),
    sa.CheckConstraint('substr(code, 7, 4) = class_code', name=op.f('ck_component_code_matches_class')),
    sa.ForeignKeyConstraint(['class_code'], ['component_class.code'], name=op.f('fk_component_class_code_component_class'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['competent_department_id'], ['department.id'], name=op.f('fk_component_competent_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['maintainer_department_id'], ['department.id'], name=op.f('fk_component_maintainer_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['owner_department_id'], ['department.id'], name=op.f('fk_component_owner_department_id_department'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_component')),
    sa.UniqueConstraint('code', name=op.f('uq_component_code'))
    )
    op.create_index('ix_component_class_code', 'component', ['class_code'], unique=False)
    op.create_index('ix_component_geom', 'component', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('responsibility_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('case_type', sa.String(length=9), nullable=False),
    sa.Column('class_code', sa.String(length=4), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('road_grade_code', sa.String(length=16), nullable=True),
    sa.Column('area_class', sa.String(length=1), nullable=True),
    sa.Column('target', sa.String(length=24), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(target = 'department') = (department_id IS NOT NULL)", name=op.f('ck_responsibility_rule_department_iff_target')),
    sa.CheckConstraint("area_class IS NULL OR area_class IN ('A', 'B', 'C')", name=op.f('ck_responsibility_rule_area_class')),
    sa.CheckConstraint("case_type IN ('component', 'event')", name=op.f('ck_responsibility_rule_case_type')),
    sa.CheckConstraint("class_code IS NULL OR class_code ~ '^[0-9]{2}([0-9]{2})?$'", name=op.f('ck_responsibility_rule_class_code')),
    sa.CheckConstraint("target IN ('department', 'street_office', 'road_maintenance', 'road_cleaning', 'component_maintainer', 'component_owner')", name=op.f('ck_responsibility_rule_target')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_responsibility_rule_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_responsibility_rule_district_id_district'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['road_grade_code'], ['road_grade.code'], name=op.f('fk_responsibility_rule_road_grade_code_road_grade'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['street_id'], ['street.id'], name=op.f('fk_responsibility_rule_street_id_street'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_responsibility_rule')),
    sa.UniqueConstraint('code', name=op.f('uq_responsibility_rule_code'))
    )
    op.create_table('road',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('source_class', sa.Text(), nullable=True),
    sa.Column('grade_code', sa.String(length=16), nullable=False),
    sa.Column('maintenance_department_id', sa.Integer(), nullable=True),
    sa.Column('cleaning_department_id', sa.Integer(), nullable=True),
    sa.Column('lanes', sa.Integer(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTILINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['cleaning_department_id'], ['department.id'], name=op.f('fk_road_cleaning_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['grade_code'], ['road_grade.code'], name=op.f('fk_road_grade_code_road_grade'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['maintenance_department_id'], ['department.id'], name=op.f('fk_road_maintenance_department_id_department'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_road')),
    sa.UniqueConstraint('code', name=op.f('uq_road_code'))
    )
    op.create_index(op.f('ix_road_cleaning_department_id'), 'road', ['cleaning_department_id'], unique=False)
    op.create_index('ix_road_geom', 'road', ['geom'], unique=False, postgresql_using='gist')
    op.create_index(op.f('ix_road_grade_code'), 'road', ['grade_code'], unique=False)
    op.create_index(op.f('ix_road_maintenance_department_id'), 'road', ['maintenance_department_id'], unique=False)
    op.create_table('unit_grid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('area_class', sa.String(length=1), server_default='B', nullable=False),
    sa.Column('responsible_department_id', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.Date(), server_default=sa.text('CURRENT_DATE'), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("area_class IN ('A', 'B', 'C')", name=op.f('ck_unit_grid_area_class')),
    sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f('ck_unit_grid_code_format')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_unit_grid_validity')),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], name=op.f('fk_unit_grid_community_id_community'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['responsible_department_id'], ['department.id'], name=op.f('fk_unit_grid_responsible_department_id_department'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_grid'))
    )
    op.create_index(op.f('ix_unit_grid_community_id'), 'unit_grid', ['community_id'], unique=False)
    op.create_index('ix_unit_grid_geom', 'unit_grid', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('uq_unit_grid_code_current', 'unit_grid', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_index('uq_unit_grid_code_valid_from', 'unit_grid', ['code', 'valid_from'], unique=True)
    op.create_table('component_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('component_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('class_code', sa.String(length=4), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('competent_department_id', sa.Integer(), nullable=True),
    sa.Column('owner_department_id', sa.Integer(), nullable=True),
    sa.Column('maintainer_department_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Text(), server_default='完好', nullable=False),
    sa.Column('survey_date', sa.Date(), nullable=True),
    sa.Column('change_date', sa.Date(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('source_id', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['class_code'], ['component_class.code'], name=op.f('fk_component_version_class_code_component_class'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['competent_department_id'], ['department.id'], name=op.f('fk_component_version_competent_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['component_id'], ['component.id'], name=op.f('fk_component_version_component_id_component'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['maintainer_department_id'], ['department.id'], name=op.f('fk_component_version_maintainer_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['owner_department_id'], ['department.id'], name=op.f('fk_component_version_owner_department_id_department'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_component_version')),
    sa.UniqueConstraint('component_id', 'version', name=op.f('uq_component_version_component_id_version'))
    )
    op.execute(COMPONENT_VERSIONING)


def downgrade() -> None:
    op.execute("DROP TRIGGER component_keep_version ON component")
    op.execute("DROP TRIGGER component_next_version ON component")
    op.execute("DROP FUNCTION component_keep_version()")
    op.execute("DROP FUNCTION component_next_version()")
    op.drop_table('component_version')
    op.drop_index('uq_unit_grid_code_valid_from', table_name='unit_grid')
    op.drop_index('uq_unit_grid_code_current', table_name='unit_grid', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index('ix_unit_grid_geom', table_name='unit_grid', postgresql_using='gist')
    op.drop_index(op.f('ix_unit_grid_community_id'), table_name='unit_grid')
    op.drop_table('unit_grid')
    op.drop_index(op.f('ix_road_maintenance_department_id'), table_name='road')
    op.drop_index(op.f('ix_road_grade_code'), table_name='road')
    op.drop_index('ix_road_geom', table_name='road', postgresql_using='gist')
    op.drop_index(op.f('ix_road_cleaning_department_id'), table_name='road')
    op.drop_table('road')
    op.drop_table('responsibility_rule')
    op.drop_index('ix_component_geom', table_name='component', postgresql_using='gist')
    op.drop_index('ix_component_class_code', table_name='component')
    op.drop_table('component')
    op.drop_index(op.f('ix_duty_grid_member_duty_grid_id'), table_name='duty_grid_member')
    op.drop_table('duty_grid_member')
    op.drop_table('duty_grid_inspector')
    op.drop_index(op.f('ix_department_street_id'), table_name='department')
    op.drop_index(op.f('ix_department_district_id'), table_name='department')
    op.drop_table('department')
    op.drop_index(op.f('ix_community_street_id'), table_name='community')
    op.drop_index('ix_community_geom', table_name='community', postgresql_using='gist')
    op.drop_index(op.f('ix_community_district_id'), table_name='community')
    op.drop_table('community')
    op.drop_index('ix_street_geom', table_name='street', postgresql_using='gist')
    op.drop_index(op.f('ix_street_district_id'), table_name='street')
    op.drop_table('street')
    op.drop_table('duty_grid')
    op.drop_table('calendar_day')
    op.drop_table('working_calendar')
    op.drop_table('road_grade')
    op.drop_table('inspector')
    op.drop_table('event_class')
    op.drop_index('ix_district_geom', table_name='district', postgresql_using='gist')
    op.drop_table('district')
    op.drop_table('data_source')
    op.drop_table('component_class')
    op.drop_table('city')
