"""Talking to a node: JSON-RPC client, ABI codec, Multicall3 batching at a pinned block, log reading."""
