#!/usr/bin/env bash
# The one test command (`npm test`, also what .ci/run runs): makes sure the Debian packages the tests start are
# installed (.ci/apt-packages: installed with apt-get when run as root, else one line saying what to install), then
# builds from a clean dist/ and runs tap. Arguments go to tap: `npm test -- dist/test/unit` runs only those files.
set -uo pipefail
cd "$(dirname "$0")/.."

packages=$(sed -e 's/#.*//' .ci/apt-packages | tr -s ' \t' '\n\n' | grep -v '^$')
if command -v dpkg-query >/dev/null; then
  missing=()
  for pkg in $packages; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "npm test: the tests need Debian packages that are missing: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
    echo "npm test: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } || {
      echo "npm test: apt-get install ${missing[*]} failed" >&2
      exit 1
    }
  fi
else
  echo "npm test: no dpkg here; the tests expect these (Debian names) on PATH: $(echo $packages)" >&2
fi

npm run --silent clean && npm run --silent build || exit 1
exec npx --no-install tap "$@"
