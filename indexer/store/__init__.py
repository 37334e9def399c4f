"""Storage: sqlmodel tables, the engine for SQLite/PostgreSQL, snapshot writes and read queries."""
