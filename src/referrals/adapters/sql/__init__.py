"""SQL store (SQLite, PostgreSQL) on SQLAlchemy Core."""
