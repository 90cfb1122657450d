"""Storage: SQLAlchemy Core tables, the database handle and the unit of work."""
