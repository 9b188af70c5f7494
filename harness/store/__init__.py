"""DuckDB store: schema migrations, datasets, runs."""
