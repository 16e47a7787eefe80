"""Add the delivery pipeline's leases and frozen execution settings.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Databases where an earlier pipeline created these tables itself already have them.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "pipeline_leases" not in existing:
        op.create_table(
            "pipeline_leases",
            sa.Column("name", sa.String(128), nullable=False),
            sa.Column("holder", sa.String(255), nullable=True),
            sa.Column("host", sa.String(255), nullable=True),
            sa.Column("pid", sa.Integer(), nullable=True),
            sa.Column("expires_at", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("name", name="pk_pipeline_leases"),
        )
    if "pipeline_execution_settings" not in existing:
        op.create_table(
            "pipeline_execution_settings",
            sa.Column("execution_id", sa.String(64), nullable=False),
            sa.Column("settings", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("execution_id", name="pk_pipeline_execution_settings"),
        )


def downgrade() -> None:
    op.drop_table("pipeline_execution_settings")
    op.drop_table("pipeline_leases")
