"""Run history: SQLAlchemy models, the run repository, the recorder, Alembic migrations."""
