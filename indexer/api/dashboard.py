"""``GET /``: one self-contained HTML page (inline CSS and JS, charts drawn as SVG; nothing from the internet).

The page fetches the JSON endpoints (``/protocols``, ``/at-risk``, ``/distribution``, ``/assets``, ``/levels``,
``/runs``) and refreshes itself every ``[api] refresh_seconds``. With a token configured, open it as
``/?token=<token>``: the page sends the token as a bearer header with every fetch.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

router = APIRouter()

_CONFIG_SLOT = ("/*CONFIG*/", "/*END*/")


def render_dashboard(*, refresh_seconds: float, at_risk_below: str, warning_hf: str, critical_hf: str) -> str:
    """The page with its settings filled in."""
    page = resources.files("indexer.api").joinpath("dashboard.html").read_text()
    start, end = page.index(_CONFIG_SLOT[0]), page.index(_CONFIG_SLOT[1])
    config = {
        "refreshSeconds": refresh_seconds,
        "atRiskBelow": at_risk_below,
        "warningHf": float(Decimal(warning_hf)),
        "criticalHf": float(Decimal(critical_hf)),
    }
    # JSON in a <script>: "</" must not end the script element.
    text = json.dumps(config).replace("</", "<\\/")
    return page[: start + len(_CONFIG_SLOT[0])] + text + page[end:]


@router.get("/", response_class=HTMLResponse, tags=["service"], summary="the dashboard (HTML); with a token: /?token=<token>")
def dashboard(
    request: Request,
    token: Annotated[str | None, Query(max_length=500, description="the [api] token, passed on to the page's fetches")] = None,
) -> HTMLResponse:
    state = request.app.state.api
    settings = state.settings
    warning, critical = state.tier_thresholds_text()
    html = render_dashboard(refresh_seconds=settings.api.refresh_seconds, at_risk_below=settings.api.at_risk_below, warning_hf=warning, critical_hf=critical)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
