"""Oracle reads: Chainlink AggregatorV3 feeds and protocol oracles."""
