"""Run ids are never reused: SQLite's ``AUTOINCREMENT`` on ``runs`` (PostgreSQL's sequence never reuses).

Without it, SQLite gives a new row the largest id + 1, so deleting the newest run hands its id to the next
one and an old export, note or link naming "run 7" would name a different run. The table is rebuilt (SQLite
cannot add ``AUTOINCREMENT`` in place); copying the rows in records their largest id in ``sqlite_sequence``.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("runs", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("runs", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
