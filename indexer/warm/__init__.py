"""Warm, event-driven refresh: per block, read what changed and recompute every verdict from kept state.

- ``book``: ``WarmBook``, one protocol instance's raw position state brought forward block by block (market state,
  the block's events, the accounts they name, a random sample compared with the kept state);
- ``gmx`` and ``gmx_reader``: GMX v2's Reader views derived from stored positions and market-wide DataStore values;
- ``filters``: one eth_getLogs for the change and discovery filters;
- ``follow``: ``WarmIndexer``, which follows new blocks and stores a snapshot per block.
"""
