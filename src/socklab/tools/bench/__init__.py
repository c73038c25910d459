"""`socklab bench`: a closed-loop load generator for the converter protocol, and model comparison.

- workload.py  what is sent and the exact bytes expected back; the compare scenarios
- load.py      the closed loop itself (one process, one poller, every reply checked)
- histogram.py latency histogram: bounded, mergeable, ~1.5 % resolution
- server.py    a converter server started as a child process, its CPU and peak RSS
- run.py       one run: processes, progress, merging into a BenchResult
- compare.py   every RUNTIMES model under the same scenarios
- results.py   the dataclasses the CLI renders

Nothing is imported here: `socklab` builds every command's parser at start-up, and a converter
server must not pay for multiprocessing and friends it never uses.
"""
