#!/usr/bin/env bash
# Rebuilds jssip.min.js, the browser bundle of JsSIP that the SIP over
# WebSocket end-to-end test loads (JsSIP ships none). Needs node and npm
# (Debian: apt-get install nodejs npm); it installs the pinned JsSIP and
# esbuild into a temporary folder and writes jssip.min.js beside this script.
#   cmd/voxgate/testdata/jssip/build.sh
set -euo pipefail
JSSIP=3.13.8
ESBUILD=0.28.2
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact "jssip@$JSSIP" "esbuild@$ESBUILD" >/dev/null
echo "import JsSIP from 'jssip'; window.JsSIP = JsSIP;" > entry.js
npx esbuild entry.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=inline --banner:js="/* JsSIP $JSSIP (MIT, https://jssip.net), bundled with esbuild $ESBUILD by build.sh */" \
  --outfile="$here/jssip.min.js"
echo "wrote $here/jssip.min.js (JsSIP $JSSIP)"
