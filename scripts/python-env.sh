# Sourced by the scripts: sets PY to the python of a virtual environment at $1 (created on first
# use) that has gguf and numpy, so nothing is installed into the system Python — which PEP 668
# forbids on many systems. Python is only for fetching models and checking; edgequant needs none.
_venv=${1:?python-env.sh VENV_DIR}
if [ ! -x "$_venv/bin/python" ]; then
  python3 -m venv "$_venv" || { echo "python-env.sh: cannot create a virtual environment at $_venv (on Debian/Ubuntu: apt install python3-venv)" >&2; exit 2; }
fi
PY="$_venv/bin/python"
"$PY" -c "import gguf, numpy" 2>/dev/null || "$PY" -m pip install -q gguf numpy
export EDGEQUANT_VENV="$_venv"
