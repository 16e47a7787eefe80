"""Create the registry tables: runs and their epochs, model versions, slots and their audit
log, pipeline executions, their stages and approvals.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out rather than imported from the ORM classes, so that this migration keeps creating
# the same tables when the classes change in later versions. Status columns are plain strings
# without CHECK constraints: the enums in `schema.py` validate them, and a new state then
# needs no migration.
STATUS = sa.String(32)
TIMESTAMP = sa.DateTime(timezone=True)
SLOT_NAMES = ("blue", "green")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("folder", sa.Text(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("dataset_digest", sa.String(64), nullable=True),
        sa.Column("dataset_source", sa.Text(), nullable=True),
        sa.Column("engine", sa.String(64), nullable=True),
        sa.Column("strategy", sa.String(64), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("epochs_completed", sa.Integer(), nullable=False),
        sa.Column("final_cost", sa.Float(), nullable=True),
        sa.Column("stopped_early", sa.Boolean(), nullable=True),
        sa.Column("training_seconds", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "run_epochs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_epochs_run_id_runs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "epoch", name="pk_run_epochs"),
    )

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("class_names", sa.JSON(), nullable=False),
        sa.Column("preprocessing", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("dataset_digest", sa.String(64), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
    )
    op.create_index("ix_model_versions_artifact_sha256", "model_versions", ["artifact_sha256"])
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])

    slots = op.create_table(
        "slots",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name="fk_slots_version_id_model_versions"),
        sa.ForeignKeyConstraint(["previous_version_id"], ["model_versions.id"],
                                name="fk_slots_previous_version_id_model_versions"),
        sa.PrimaryKeyConstraint("name", name="pk_slots"),
    )
    # The slot rows exist from the start, so a promotion only ever updates a row and the row
    # lock (or SQLite's write lock) is all it needs.
    op.bulk_insert(slots, [{"name": name, "generation": 0} for name in SLOT_NAMES])

    op.create_table(
        "slot_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot", sa.String(16), nullable=False),
        sa.Column("action", STATUS, nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("to_version_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["slot"], ["slots.name"], name="fk_slot_changes_slot_slots"),
        sa.ForeignKeyConstraint(["from_version_id"], ["model_versions.id"],
                                name="fk_slot_changes_from_version_id_model_versions"),
        sa.ForeignKeyConstraint(["to_version_id"], ["model_versions.id"],
                                name="fk_slot_changes_to_version_id_model_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_slot_changes"),
    )
    op.create_index("ix_slot_changes_slot_generation", "slot_changes", ["slot", "generation"])

    op.create_table(
        "pipeline_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("data_path", sa.Text(), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"],
                                name="fk_pipeline_executions_model_version_id_model_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_executions"),
    )
    op.create_index("ix_pipeline_executions_status", "pipeline_executions", ["status"])

    op.create_table(
        "pipeline_stages",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["execution_id"], ["pipeline_executions.id"],
                                name="fk_pipeline_stages_execution_id_pipeline_executions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("execution_id", "name", name="pk_pipeline_stages"),
    )

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("decision", STATUS, nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["pipeline_executions.id"],
                                name="fk_approvals_execution_id_pipeline_executions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_execution_id", "approvals", ["execution_id"])


def downgrade() -> None:
    for table in ("approvals", "pipeline_stages", "pipeline_executions", "slot_changes",
                  "slots", "model_versions", "run_epochs", "runs"):
        op.drop_table(table)
