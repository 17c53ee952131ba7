#!/usr/bin/env bash
# Starts a local 4-validator network (issue 4). Until the node is built, says so plainly.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "yrd devnet: the node (storage, network, gRPC, 'yrd-node devnet') is not built yet (issue 4)." >&2
echo "What runs today: deploy/test.sh (chaincode, signing, consensus simulator)." >&2
exit 2
