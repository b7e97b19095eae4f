"""`make bench`: the bridge against mcp-proxy (npm and PyPI) and supergateway, and the control plane.

Run with `python -m benchmarks` (see run.py for the options). Every benchmark prints
a table (median and spread over repeated runs) and its numbers go to bench-results/.
"""
