import sys

from services.alb_agent.main import main

sys.exit(main())
