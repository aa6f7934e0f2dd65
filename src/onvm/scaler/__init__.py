"""onvm-scaler: the per-host agent.  Today it keeps the global view in Redis
current from its host's stats area; auto-scaling comes next."""
