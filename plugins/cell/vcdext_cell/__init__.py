"""The local cell: an embedded stand-in for vCloud Director's side of extension services.

It serves the parts of the vCloud API that extension services and their clients use (login,
extension registration, query service, tasks, events, a small inventory with service links)
over HTTP, and forwards requests matching a registered API filter over AMQP exactly as vCD
does. The runtime reaches it only over HTTP and AMQP: there are no shortcuts.

``Cell`` (:mod:`.cell`) is the in-process API; ``vcdext cell`` (:mod:`.command`) runs one
alone. The seed file format is described in :mod:`.seed`, the routing order in
:mod:`.server`, the forwarding in :mod:`.proxy` and :mod:`.forwarder`.
"""

from .cell import Cell, CellError, Credential
from .seed import Seed, demo_seed, load_seed

__all__ = ["Cell", "CellError", "Credential", "Seed", "demo_seed", "load_seed"]
