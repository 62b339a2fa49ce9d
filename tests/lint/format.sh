#!/bin/sh
# Fails when a product source file is not formatted as .clang-format says.
# Fix with: clang-format -i common/*.[ch] agent/*.[ch] gateway/*/*.[ch] gateway/*/*/*.[ch] bench/*.c
# usage: format.sh SOURCE_DIR
set -u
dir=${1:?usage: format.sh SOURCE_DIR}
cd "$dir" || exit 2
if clang-format --dry-run --Werror common/*.[ch] agent/*.[ch] gateway/*/*.[ch] gateway/*/*/*.[ch] bench/*.c; then
	echo "all sources formatted"
else
	echo "run: clang-format -i common/*.[ch] agent/*.[ch] gateway/*/*.[ch] gateway/*/*/*.[ch] bench/*.c"
	exit 1
fi
