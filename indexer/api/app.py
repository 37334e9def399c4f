"""The FastAPI application: read-only JSON endpoints, the dashboard and the Prometheus metrics over the store.

Nothing here talks to a chain: every answer is computed from stored snapshots (the risk functions recompute
stored positions under other prices from their stored state). With ``[api] token`` set, every endpoint but
``/healthz``, ``/openapi.json`` and ``/docs`` needs ``Authorization: Bearer <token>``; the dashboard page
also takes ``?token=`` (a browser cannot send a header when it opens a page) and passes it to its fetches.

>>> from indexer.config import Settings
>>> from indexer.store.db import make_engine
>>> app = create_app(Settings(), make_engine("sqlite://"))
>>> [path for path in app.openapi()["paths"] if path.startswith("/a")]
['/at-risk', '/accounts/{address}', '/assets']
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.api.schemas import finite
from indexer.api.state import ApiState
from indexer.config import Settings
from indexer.errors import StoreError

log = logging.getLogger(__name__)

DESCRIPTION = """Read-only access to the indexer's store: positions and their health at the latest snapshots,
accounts across protocols, liquidation targets, protocol solvency, liquidation levels, stress scenarios and the
snapshot runs with their lag. Health factors are decimal strings of the integer x 1e18 (or "inf" without debt)
beside a float; USD amounts are floats beside exact `*_usd_e18` integer strings. Errors are `{"error": message}`."""


class SafeJSONResponse(JSONResponse):
    """JSON without NaN/Infinity (invalid JSON): non-finite floats are sent as null."""

    def render(self, content: Any) -> bytes:
        return super().render(finite(content))


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return SafeJSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_BEARER = HTTPBearer(auto_error=False, description="the `[api] token` of the config, when set")


def token_guard(token: str | None, *, allow_query: bool = False) -> Any:
    """A dependency that answers 401 unless the request carries the bearer token (no-op without a token)."""

    def require(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else None
        if given is None and allow_query:
            given = request.query_params.get("token")
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token: send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})

    return require


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """The API over ``engine``'s store, configured by ``settings`` (``[api]``, ``[risk]`` and the others' sections)."""
    from indexer import __version__
    from indexer.api.dashboard import router as dashboard_router
    from indexer.api.metrics import router as metrics_router
    from indexer.api.routes import public_router
    from indexer.api.routes import router as data_router

    app = FastAPI(
        title="DeFi collateral health indexer",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=SafeJSONResponse,
    )
    app.state.api = ApiState(settings, engine)
    token = settings.api.token

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc), detail=[{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()])

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.warning("api store error: %s", exc)
        return _error(503, f"the store cannot answer: {exc}")

    app.include_router(public_router)
    app.include_router(data_router, dependencies=[Depends(token_guard(token))])
    app.include_router(metrics_router, dependencies=[Depends(token_guard(token))])
    app.include_router(dashboard_router, dependencies=[Depends(token_guard(token, allow_query=True))])
    return app
