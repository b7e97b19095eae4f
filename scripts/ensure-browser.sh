#!/usr/bin/env bash
# Installs the headless browser the dashboard tests drive: Debian's chromium and the
# matching chromium-driver (Selenium talks to it), only when one of them is missing.
# No browser is ever downloaded from anywhere else: the two packages come from the same
# Debian release, so their versions always match.
set -euo pipefail
STEP=browser
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v dpkg-query >/dev/null 2>&1 ||
    die "no dpkg-query: install Chromium and its chromedriver by hand (same version)"

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

wanted=(chromium chromium-driver)
missing=()
for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    say "present: $(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2 || echo chromedriver)"
    exit 0
fi

say "installing missing Debian packages: ${missing[*]}"
if ! is_root && ! command -v sudo >/dev/null 2>&1; then
    die "not root and no sudo; run as root, then retry: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

for pkg in "${missing[@]}"; do
    installed "$pkg" || die "package $pkg is still not installed after apt-get install"
done
say "installed: ${missing[*]}"
