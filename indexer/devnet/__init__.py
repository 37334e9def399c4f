"""A local chain for the demo and the tests: anvil from node_modules, the fixture contracts, seeded users.

Transactions are sent with ``eth_sendTransaction`` from accounts anvil impersonates; no private key is
ever used or needed.
"""
