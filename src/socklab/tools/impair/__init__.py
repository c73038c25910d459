"""`socklab impair`: a fault-injecting relay for TCP and UDP (pure policy + asyncio relay)."""

from socklab.tools.impair.policy import FaultSettings
from socklab.tools.impair.relay import (
    ImpairConfig,
    ImpairRelay,
    ImpairStats,
    TargetUnreachable,
    start_impair,
)

__all__ = [
    "FaultSettings",
    "ImpairConfig",
    "ImpairRelay",
    "ImpairStats",
    "TargetUnreachable",
    "start_impair",
]
