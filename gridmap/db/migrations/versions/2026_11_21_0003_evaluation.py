"""evaluation: the moments and deadlines the KPIs are computed from, and the columns of imported cases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 09:10:00

- ``case_file.filed_at`` (立案, the cohort of a period's region and department figures),
  ``case_file.disposal_minutes`` (working minutes the department took, pauses left out);
- ``case_event.due_at``: the deadline of the stage the action ended (on time = ``at <= due_at``);
- imported cases: the system they came from (``origin``), their number there, and a class of that system
  kept as it is when it has no catalogue counterpart (``local_class``; ``class_code`` is then empty).
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('case_file', sa.Column('filed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('case_file', sa.Column('disposal_minutes', sa.Float(), nullable=True))
    op.add_column('case_file', sa.Column('origin', sa.String(length=32), nullable=True))
    op.add_column('case_file', sa.Column('external_number', sa.Text(), nullable=True))
    op.add_column('case_file', sa.Column('local_class', sa.Text(), nullable=True))
    op.alter_column('case_file', 'class_code', existing_type=sa.String(length=4), nullable=True)
    op.alter_column('case_file', 'case_type', existing_type=sa.String(length=9), nullable=True)
    op.create_check_constraint(op.f('ck_case_file_class'), 'case_file', 'class_code IS NOT NULL OR local_class IS NOT NULL')
    op.create_index('ix_case_file_filed_at', 'case_file', ['filed_at'])
    op.create_index('ix_case_file_reported_at', 'case_file', ['reported_at'])
    op.create_index('ix_case_file_external', 'case_file', ['origin', 'external_number'], unique=True,
                    postgresql_where=sa.text('origin IS NOT NULL'))
    op.add_column('case_event', sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_case_event_action_at', 'case_event', ['action', 'at'])  # a period's actions of a kind
    # events of the past get the filing moment back
    op.execute("UPDATE case_file c SET filed_at = e.at FROM (SELECT case_id, min(at) AS at FROM case_event "
               "WHERE action = 'file' GROUP BY case_id) e WHERE e.case_id = c.id")


def downgrade() -> None:
    op.drop_index('ix_case_event_action_at', table_name='case_event')
    op.drop_column('case_event', 'due_at')
    op.drop_index('ix_case_file_external', table_name='case_file')
    op.drop_index('ix_case_file_reported_at', table_name='case_file')
    op.drop_index('ix_case_file_filed_at', table_name='case_file')
    op.drop_constraint('ck_case_file_class', 'case_file', type_='check')
    op.alter_column('case_file', 'case_type', existing_type=sa.String(length=9), nullable=False)
    op.alter_column('case_file', 'class_code', existing_type=sa.String(length=4), nullable=False)
    for column in ('local_class', 'external_number', 'origin', 'disposal_minutes', 'filed_at'):
        op.drop_column('case_file', column)
