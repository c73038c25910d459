"""The command line: parse, call, present. The only layer that prints, colours or draws tables."""
