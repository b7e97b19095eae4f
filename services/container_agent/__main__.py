"""`python -m services.container_agent`: run the container-agent process."""

from __future__ import annotations

import sys

from services.container_agent.main import main

if __name__ == "__main__":
    sys.exit(main())
