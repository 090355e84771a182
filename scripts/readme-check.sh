#!/usr/bin/env bash
# Runs every `sh` block of README.md, as written and in order, in a fresh clone of this repository
# (HEAD), and fails on the first command that fails. `bash scripts/test.sh` is skipped: it is what
# runs this. The clone builds everything itself (about 8 minutes on 2 cores) and HOME is a scratch
# folder, so the install goes there.
# usage: scripts/readme-check.sh [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${1:-$(mktemp -d)}
rm -rf "$T/clone" "$T/home"; mkdir -p "$T/home"
git clone -q --no-hardlinks "$ROOT" "$T/clone"
python3 - "$ROOT/README.md" > "$T/readme.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = [m.group(1) for m in re.finditer(r"```sh\n(.*?)```", text, re.S)]
print("set -euo pipefail")
for i, b in enumerate(blocks, 1):
    for line in b.replace("\\\n", " ").split("\n"):
        cmd = line.strip()
        if not cmd or cmd.startswith("#"):
            continue
        if cmd == "bash scripts/test.sh":
            print(f"echo '[block {i}] skipped: {cmd} (it runs this check)'")
            continue
        print(f"echo '[block {i}] {cmd}'")
        print(cmd)
PY
n=$(grep -c "^echo '\[block" "$T/readme.sh")
# a user's environment: none of the variables our own scripts set for each other (EDGEQUANT_VENV, …)
(cd "$T/clone" && env $(env | sed -n 's/^\(EDGEQUANT_[A-Z_]*\)=.*/-u \1/p') HOME="$T/home" PATH="$T/home/.local/bin:$PATH" bash "$T/readme.sh") > "$T/readme.log" 2>&1 || {
  tail -5 "$T/readme.log" >&2; echo "readme-check: FAILED ($T/readme.log)" >&2; exit 1; }
grep "^\[block" "$T/readme.log"
echo "readme-check: all $n README commands ran in a fresh clone"
rm -rf "$T/clone" "$T/home"
