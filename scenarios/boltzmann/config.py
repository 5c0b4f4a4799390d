"""Options of ``socius run boltzmann``: the number of agents and, optionally, the grid's size.

:meth:`BoltzmannConfig.validate` raises a ``ValueError`` naming the field
(the command line turns it into exit code 2). Without ``width``/``height``
the grid is ``side x side`` with ``side = ceil(sqrt(agents))``, as in Mesa's
example.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BoltzmannConfig:
    """Options of ``socius run boltzmann``."""

    agents: int = 1000
    width: int | None = None   # default: ceil(sqrt(agents))
    height: int | None = None

    def validate(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents: must be >= 1, got {self.agents}")
        for k in ("width", "height"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise ValueError(f"{k}: must be >= 1, got {v}")
