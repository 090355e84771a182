#!/usr/bin/env bash
# Builds edgequant as one self-contained binary — the Swift runtime and Foundation linked in
# statically (--static-swift-stdlib), so it runs where no Swift toolchain is installed — and
# installs it with shell completions.
# usage: scripts/install.sh [PREFIX]     (default ~/.local: PREFIX/bin/edgequant,
#        PREFIX/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d})
# The build has its own folder (.build-static), so it leaves the development builds as they are.
set -euo pipefail
PREFIX=${1:-$HOME/.local}
cd "$(dirname "$0")/.."
FLAGS=(-c release --product edgequant --static-swift-stdlib --scratch-path .build-static)
swift build "${FLAGS[@]}"
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)/edgequant"
# a binary that still needs the toolchain's libraries is not what this script promises
if ldd "$BIN" | grep -Ei 'swift|foundation|dispatch|XCTest'; then
  echo "install.sh: $BIN still links Swift libraries (above)" >&2; exit 1
fi
install -d "$PREFIX/bin" "$PREFIX/share/bash-completion/completions" "$PREFIX/share/zsh/site-functions" \
  "$PREFIX/share/fish/vendor_completions.d"
install -m 755 -s "$BIN" "$PREFIX/bin/edgequant"   # stripped: symbols are most of its size
"$PREFIX/bin/edgequant" --generate-completion-script bash > "$PREFIX/share/bash-completion/completions/edgequant"
"$PREFIX/bin/edgequant" --generate-completion-script zsh > "$PREFIX/share/zsh/site-functions/_edgequant"
"$PREFIX/bin/edgequant" --generate-completion-script fish > "$PREFIX/share/fish/vendor_completions.d/edgequant.fish"
env -u LD_LIBRARY_PATH "$PREFIX/bin/edgequant" types > /dev/null   # runs on its own
echo "installed $PREFIX/bin/edgequant ($(du -h "$PREFIX/bin/edgequant" | cut -f1)), completions for bash, zsh and fish"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "note: $PREFIX/bin is not on PATH";; esac
