"""`python -m services.dashboard`: see services/dashboard/main.py."""

import sys

from services.dashboard.main import main

sys.exit(main())
