"""``[cell]``: the local cell's settings, contributed to vcdext's config through the
``vcdext.settings`` entry-point group (so ``vcdext config show`` lists them, and the same
validator reads them, only where vcdext-cell is installed)."""

from __future__ import annotations

from dataclasses import dataclass

from vcdext.settings import setting


@dataclass(frozen=True)
class CellSettings:
    """``[cell]``: the local development cell (``vcdext dev`` / ``vcdext cell``)."""

    host: str = setting("127.0.0.1", "Address the cell's HTTP server listens on.")
    port: int = setting(8080, "Port of the cell's HTTP server (0: any free port).", minimum=0)
    timeout: float = setting(
        10.0,
        "The cell's extensibility.timeout: seconds it waits for a reply before answering 504.",
        minimum=0.1,
    )
    seed: str = setting(
        "", "Seed file (TOML) with users, orgs, rights and inventory; empty: the demo seed."
    )
