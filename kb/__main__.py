"""`python -m kb` is the `kb` command."""

from __future__ import annotations

from kb.cli import main

raise SystemExit(main())
