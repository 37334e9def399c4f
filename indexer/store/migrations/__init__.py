"""Alembic migrations of the store, shipped with the package and run through ``indexer.store.schema``.

No ``alembic.ini`` is needed: ``schema.alembic_config`` points ``script_location`` at this directory.
A new revision: ``versions/NNNN_name.py`` with ``down_revision`` the previous head, using
``op.batch_alter_table`` so that it also runs on SQLite, and the models in ``store/models.py`` changed
to match (``tests/test_migrations.py`` compares the head schema with them on SQLite and PostgreSQL).
"""
