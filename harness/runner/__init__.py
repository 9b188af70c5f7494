"""The run executor: planning, concurrency, batching, progress, resume."""
