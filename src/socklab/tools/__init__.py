"""Tools that look at sockets, at other people's programs, and measure servers; each returns
dataclasses the CLI renders."""
