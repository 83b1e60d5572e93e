"""Run kinds and lineage: a fine-tuning comparison is a run too, linked to the pre-training run it started from.

``parent_run_id`` is a plain column, not a foreign key: adding a constraint makes SQLite rebuild the
runs table, and the link is kept by the repository (deleting a run clears its children's link).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="pretrain"))
        batch.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parent_run_id")
        batch.drop_column("kind")
