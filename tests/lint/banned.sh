#!/bin/sh
# Fails when product code calls a function the house style bans (curl-style):
# unbounded copies and formats, and parsers that cannot report errors. Use
# snprintf, memcpy with a checked length, strtol/strtoull with end checks.
# usage: banned.sh SOURCE_DIR
set -u
dir=${1:?usage: banned.sh SOURCE_DIR}
banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll|atof|strncpy|strncat|tmpnam|mktemp'
hits=$(grep -nE "(^|[^_[:alnum:]])($banned)[[:space:]]*\(" \
	"$dir"/common/*.c "$dir"/agent/*.c "$dir"/gateway/*/*.c "$dir"/gateway/*/*/*.c "$dir"/bench/*.c 2>/dev/null)
if [ -n "$hits" ]; then
	echo "banned functions used:"
	echo "$hits"
	exit 1
fi
echo "no banned functions in common/, agent/, gateway/, bench/"
