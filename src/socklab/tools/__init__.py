"""Tools that look at, exercise and measure sockets; each returns dataclasses the CLI renders."""
