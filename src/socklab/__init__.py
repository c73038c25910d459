"""socklab: a socket-programming toolkit for learning, teaching and debugging TCP/UDP protocols.

Layers (dependencies point down): cli -> apps / tools / clients -> runtimes -> protocol.
`socklab.protocol` is sans-I/O and usable on its own as a library.
"""

__version__ = "0.1.0"
