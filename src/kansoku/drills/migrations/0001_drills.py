"""Drill attempts: who ran which drill, with what fault, and how they scored.

Revision ID: drills_0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "drills_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.Uuid, primary_key=True),
        # The learner's name on this machine (or --user): kansoku has no sign-in of its own
        # for the CLI.
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("drill_id", sa.String(100), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("fault", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("detect_seconds", sa.Float, nullable=True),
        sa.Column("diagnose_seconds", sa.Float, nullable=True),
        sa.Column("mitigate_seconds", sa.Float, nullable=True),
        sa.Column("hints_taken", sa.Integer, nullable=False),
        sa.Column("hint_points", sa.Integer, nullable=False),
        sa.Column("wrong_tries", sa.Integer, nullable=False),
        sa.Column("false_alarms", sa.Integer, nullable=False),
        sa.CheckConstraint("points BETWEEN 0 AND 100", name="attempts_points_in_range"),
    )
    # A learner's history, newest first.
    op.create_index("attempts_by_user", "attempts", ["user_name", sa.text("ended_at DESC")])


def downgrade() -> None:
    op.drop_table("attempts")
