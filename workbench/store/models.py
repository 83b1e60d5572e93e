"""Tables of the run history (SQLAlchemy 2 ORM).

Named constraints (the naming convention below) so that Alembic batch
migrations on SQLite can find and alter them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    tokenizer_sha256: Mapped[str] = mapped_column(String(64))
    statistics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = {"sqlite_autoincrement": True}      # an id is never given to a second run (migration 0006)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    config: Mapped[dict] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64))
    dataset_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    run_dir: Mapped[str] = mapped_column(Text, default="")
    device: Mapped[str] = mapped_column(String(200), default="")
    package_version: Mapped[str] = mapped_column(String(40), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    max_steps: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    final_metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    best_metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    # Liveness (migration 0002): who runs it and when it last said so.
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)   # UTC
    process_started: Mapped[float | None] = mapped_column(Float, nullable=True)      # migration 0003
    # Lineage (migration 0004): "pretrain", or "finetune" for a fine-tuning comparison of a pre-training run.
    kind: Mapped[str] = mapped_column(String(20), default="pretrain", server_default="pretrain")
    parent_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # kept by the repository

    tags: Mapped[list["RunTag"]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    checkpoints: Mapped[list["Checkpoint"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                            order_by="Checkpoint.step")

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.tag for t in self.tags)


class StoreInfo(Base):
    """Facts about the database itself (migration 0003): ``database_id``, a random id."""

    __tablename__ = "store_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTag(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class Metric(Base):
    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)
    is_eval: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_metrics_run_name_step", "run_id", "name", "step"),)


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)




class Sweep(Base):
    """A base config with settings to vary (migration 0005); its runs are queued in ``sweep_items``."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    spec: Mapped[dict] = mapped_column(JSON)                  # what was asked for (grid, random, seeds, base)
    swept: Mapped[list] = mapped_column(JSON)                 # the settings that vary, for grouping
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    items: Mapped[list["SweepItem"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                    order_by="SweepItem.position")


class SweepItem(Base):
    """One run of a sweep, in queue order; ``run_id`` once it has started (a plain column, as parent_run_id)."""

    __tablename__ = "sweep_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))           # "masking.probability=0.3 seed=1"
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
