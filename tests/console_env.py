"""The ``leadbot`` script and a clean environment for running it as a subprocess."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot") or "leadbot"
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_"))}
