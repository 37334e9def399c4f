"""The HTTP surface: a read-only JSON API, a dashboard page and Prometheus metrics over the store (``indexer serve``)."""

from indexer.api.app import create_app

__all__ = ["create_app"]
