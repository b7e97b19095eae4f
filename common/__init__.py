"""Code shared by two or more of the orchestrator's processes."""
