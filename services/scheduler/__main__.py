"""`python -m services.scheduler`: run the scheduler process."""

from __future__ import annotations

import sys

from services.scheduler.main import main

if __name__ == "__main__":
    sys.exit(main())
