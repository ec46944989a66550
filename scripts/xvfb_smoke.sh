#!/usr/bin/env bash
# Start `labpnn gui` on a real X server (Xvfb), save a screenshot, check it is not blank.
# Usage: scripts/xvfb_smoke.sh [OUT.png] [STATION]     (needs the xvfb package)
set -euo pipefail
out="${1:-xvfb-gui.png}"
station="${2:-optical-sim}"
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$here/.venv/bin/python}"
command -v Xvfb >/dev/null || { echo "Xvfb is not installed (apt-get install xvfb)" >&2; exit 2; }
display=":$(( (RANDOM % 400) + 100 ))"
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
DISPLAY="$display" QT_QPA_PLATFORM=xcb LABPNN_GUI_SCREENSHOT="$out" \
  timeout 120 "$py" -m labpnn.cli gui --station "$station"
"$py" - "$out" <<'PY'
import sys
from PyQt6.QtGui import QImage
img = QImage(sys.argv[1])
assert not img.isNull(), f"{sys.argv[1]} is not an image"
colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
print(f"{sys.argv[1]}: {img.width()}x{img.height()}, {len(colours)} distinct colours")
sys.exit(0 if len(colours) > 20 else 1)
PY
