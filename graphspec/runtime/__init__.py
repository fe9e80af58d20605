"""Running compiled models: the one executor, and process-wide tuning the CLI applies once."""
