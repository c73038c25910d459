"""`socklab trace -- COMMAND ...`: any program's socket calls, with the program unchanged.

Python programs are traced from inside (`hook`, loaded at start-up through PYTHONPATH, events
over a pipe as `wire` lines); other programs on Linux through strace (`strace`); `runner` starts
either and waits. Both give the `TraceEvent`s of `socklab.tracing`, so the CLI renders them as it
renders `--trace`. Nothing is imported here: the hook runs inside the traced program, which
should load no more of socklab than it needs.
"""
