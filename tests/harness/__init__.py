"""The orchestrator's real processes for tests and benchmarks.

One way to wait with a deadline (`waiting`), to find free ports (`ports`), to write a
settings and a configuration file (`files`), to run a process with its output in a log
file, started from the launcher's own child specs (`processes`), and a private cluster
of the container-agent, alb-agent, scheduler and dashboard (`cluster`).

Not part of the product: only `tests/` and `benchmarks/` import it, and it imports
nothing from either (benchmarks run without pytest).
"""
