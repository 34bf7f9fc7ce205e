#!/bin/sh
# bin/spokesync of the offline package: runs spokesync on the Node.js runtime
# shipped beside it, whatever Node.js (if any) the machine has.
# /usr/local/bin/spokesync links here; readlink -f finds the package through it.
app=$(dirname "$(dirname "$(readlink -f "$0")")")
exec "$app/node/bin/node" "$app/dist/agent/main.js" "$@"
