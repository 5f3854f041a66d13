"""The `paceline` command and its settings."""
