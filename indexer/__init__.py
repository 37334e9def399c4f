"""DeFi collateral health indexer: exact liquidation verdicts and risk snapshots for lending positions."""

__version__ = "0.1.0"
