"""Everything that leaves the process later: the outbox, its worker (callbacks and uploads,
signed, retried), signed audio links, the periodic retention job and their metrics."""
