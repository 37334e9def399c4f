"""Stored positions recomputed under other prices with each protocol's exact rule (see ``base``).

Importing the package registers every kind's model loader.
"""

from indexer.risk.reprice import aave_v3, compound_v3, gmx_v2, morpho_blue, synthetix_perps_v2  # noqa: F401
from indexer.risk.reprice.base import Evaluation, OraclePrice, PositionModel, Shocks, load_model

__all__ = ["Evaluation", "OraclePrice", "PositionModel", "Shocks", "load_model"]
