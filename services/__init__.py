"""The orchestrator's four processes (one package each) and its command line."""
