"""Leadbot's tests.

Compiled modules are cached between runs, as Python does by default, even where the environment
says ``PYTHONDONTWRITEBYTECODE``: the suite starts about a hundred Python processes (``leadbot``
commands, work processes, xdist workers), and without the cache each compiles Leadbot's modules
again (measured back to back on 2 cores from clean caches: 76 s and 138 CPU-seconds with it, 89 s
and 164 without). The caches are ``__pycache__``
directories, which git ignores. This package is imported before any test module or conftest.
"""

import os
import sys

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
