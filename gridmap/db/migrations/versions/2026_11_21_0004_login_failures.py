"""login failures: a user name or a client address with too many failed log-ins is refused for a while

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failure',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('user_name', sa.Text(), nullable=False),
        sa.Column('client', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure')),
    )
    op.create_index('ix_login_failure_name_at', 'login_failure', ['user_name', 'at'])
    op.create_index('ix_login_failure_client_at', 'login_failure', ['client', 'at'])


def downgrade() -> None:
    op.drop_table('login_failure')
