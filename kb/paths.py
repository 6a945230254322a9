"""Where kb's data lives: `kb/rules` and `kb/facts`, found from the package's folder.

Modules of every package reach the data through `PACKAGE_DIR` rather than by counting the
parents of their own file, so a module that moves to another package still finds it.
This module imports nothing from `kb`: every layer may use it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGE_DIR"]

PACKAGE_DIR = Path(__file__).parent
