#!/usr/bin/env bash
# Installs the headless browser the dashboard tests drive: Debian's chromium and the
# matching chromium-driver (Selenium talks to it), only when one of them is missing.
# No browser is ever downloaded from anywhere else: the two packages come from the same
# Debian release, so their versions always match.
set -euo pipefail
STEP=browser
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_debian_packages chromium chromium-driver
say "$(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2 || echo chromedriver)"
