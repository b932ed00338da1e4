"""SQLAlchemy models and repositories; alembic migrations"""
