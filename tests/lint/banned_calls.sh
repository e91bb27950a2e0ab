#!/bin/sh
# Fails when empq's C sources call a libc function the project bans: string
# copies and formats without a size (strcpy, strcat, sprintf, vsprintf, gets)
# and strtok (hidden state). Use snprintf, memcpy with a known length, or
# strtok_r. Usage: banned_calls.sh [SOURCE_DIR]
set -eu
src=${1:-$(dirname "$0")/../..}
cd "$src"
set -- lib include broker worker collector cli fakellm tests/unit tests/fuzz
# \b...\s*( : a call, not a word inside another name (snprintf, strtok_r)
found=$(grep -rnE --include='*.c' --include='*.h' \
    '(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' "$@" || true)
if [ -n "$found" ]; then
    echo "banned libc calls (use snprintf, memcpy with a length, strtok_r):" >&2
    echo "$found" >&2
    exit 1
fi
echo "no banned libc calls in: $*"
