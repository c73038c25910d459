"""The course's programs, each wiring the protocol core to sockets; they report, the CLI prints."""
