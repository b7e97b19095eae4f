"""The label on every container the tests make, so that one filter finds (and removes)
what a crashed run left."""

TEST_LABEL = "mcp-orchestrator.test"
