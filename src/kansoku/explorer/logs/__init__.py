"""logs: the search of the log records."""
