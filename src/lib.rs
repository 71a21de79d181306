//! pgsluice: a PostgreSQL connection pooler.
