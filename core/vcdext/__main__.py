"""``python -m vcdext`` is the ``vcdext`` command."""

from .cli import main

raise SystemExit(main())
