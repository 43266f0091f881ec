"""layers version: a counter on the city row that every change to the unit grids, roads, components or the
places they belong to bumps

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 01:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# what the routing's decision reads of the territory (gridmap.routing.layers: GRID_SQL, ROAD_SQL,
# COMPONENT_SQL); the departments named there bump reference_version already (migration 0005)
WATCHED = ('unit_grid', 'community', 'street', 'district', 'duty_grid', 'duty_grid_member', 'road', 'component')

# A server keeps the whole city's layers in memory and checks this counter, read with the stamp every decision
# reads, instead of searching the layers in the database for every report. As migration 0005's counter: a
# statement trigger (a bulk load bumps it once per statement), a new value from a sequence (a change rolled
# back never gives its value to a later one), seen by others from the change's commit on.
BUMP = """
CREATE SEQUENCE layers_version_seq;
CREATE FUNCTION bump_layers_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE city SET layers_version = nextval('layers_version_seq');
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column('city', sa.Column('layers_version', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.execute(BUMP)
    for table in WATCHED:
        op.execute(f"CREATE TRIGGER {table}_bump_layers_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_layers_version()")


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_bump_layers_version ON {table}")
    op.execute("DROP FUNCTION bump_layers_version()")
    op.execute("DROP SEQUENCE layers_version_seq")
    op.drop_column('city', 'layers_version')
