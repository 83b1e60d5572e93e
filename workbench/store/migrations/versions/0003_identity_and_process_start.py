"""Database identity and process start times.

``store_info`` holds one row, ``database_id``: a random id that run folders
record in their marker, so that deleting a run removes its folder only when
the folder says it belongs to that run of this very database. ``runs.process_started``
is when the training process started (Linux clock ticks since boot), so a
reused process id does not keep a dead run "running". Step counts and sizes
become 64-bit where the database's INTEGER is 32-bit (PostgreSQL): a
checkpoint over 2 GB or a run past 2**31 steps must fit. (SQLite's INTEGER
is 64-bit already, and altering would copy the metrics table.)

Revision ID: 0003
Revises: 0002
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WIDENED = (("runs", "steps"), ("runs", "max_steps"), ("metrics", "step"), ("checkpoints", "step"),
           ("checkpoints", "size_bytes"))


def upgrade() -> None:
    table = op.create_table(
        "store_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.bulk_insert(table, [{"key": "database_id", "value": uuid.uuid4().hex}])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("process_started", sa.Float(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("process_started")
    op.drop_table("store_info")
