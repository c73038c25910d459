"""The lessons of `socklab demo`, one module per lesson; `socklab.apps.demo` lists them.

Every lesson runs on loopback with ports the OS picks, narrates through `say`, bounds every
wait, and returns True only when what it showed really happened (the demo then exits 0).
"""
