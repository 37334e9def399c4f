"""Pure risk functions over domain objects: no web3, no database."""
