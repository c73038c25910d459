"""The sans-I/O core: what bytes mean, with no sockets, threads, clocks or randomness.

Everything here is synchronous and deterministic; runtimes feed it bytes and write out what it
hands back. An architecture test fails if anything in this package imports socket, selectors,
asyncio, threading or time.
"""
