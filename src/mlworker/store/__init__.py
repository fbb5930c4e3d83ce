"""Persistence: the metadata database (SQLAlchemy, Alembic) and the artifact store.

The only package that imports SQLAlchemy. ORM rows stay inside; repositories return values.
"""
