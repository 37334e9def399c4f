"""docker-compose.yml and the Dockerfile, checked without Docker: every command a service runs is a real
``indexer`` command, the wiring (health, one-shot migration, database URL, replicas) is what the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
INDEXER = Path(sys.executable).with_name("indexer")  # the console script of the virtualenv running the tests


def _interpolate(value: str) -> str:
    """Compose's variable interpolation with nothing set: ``${X:-default}`` -> default, ``${X}`` -> "", ``$$`` -> ``$``."""
    value = re.sub(r"(?<!\$)\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
    return value.replace("$$", "$")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(doc["services"])


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(str(v)) for k, v in env.items()}


def test_services_and_their_wiring(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "anvil", "migrate", "indexer", "api"}

    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg["volumes"]), "the data survives the container"
    pg_env = _env(pg)
    assert pg_env["POSTGRES_PASSWORD"] and pg_env["POSTGRES_USER"] and pg_env["POSTGRES_DB"]

    anvil = services["anvil"]
    assert anvil["image"].startswith("ghcr.io/foundry-rs/foundry")
    assert _interpolate(" ".join(_command(anvil))).startswith("anvil --host 0.0.0.0")

    for name in ("migrate", "indexer", "api"):
        svc = services[name]
        assert svc["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = make_url(_env(svc)["INDEXER_DATABASE_URL"])
        assert (url.drivername, url.host, url.port, url.database) == ("postgresql+psycopg", "postgres", 5432, pg_env["POSTGRES_DB"])
        assert (url.username, url.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
    assert _command(services["migrate"])[:3] == ["indexer", "db", "upgrade"]
    assert services["migrate"].get("restart", "no") == "no"
    indexer = services["indexer"]
    assert indexer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _command(indexer)[:2] == ["indexer", "run"] and "/config/indexer.toml" in _command(indexer)
    assert indexer["deploy"]["replicas"] >= 2, "several processes share the jobs (or --scale indexer=N)"


def test_api_service_serves_the_same_database_after_the_migration(services: dict[str, Any]) -> None:
    """`indexer serve` on all interfaces of its container, published on loopback, started once the schema is
    at the head, health-checked through /healthz, with the token from API_TOKEN (empty: none)."""
    api = services["api"]
    cmd = _command(api)
    assert cmd[:2] == ["indexer", "serve"] and "/config/indexer.toml" in cmd
    host, port = cmd[cmd.index("--host") + 1], cmd[cmd.index("--port") + 1]
    assert host == "0.0.0.0", "reachable through the published port"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "anvil" not in api["depends_on"], "the API reads the store only, never the chain"
    published = [_interpolate(p) for p in api["ports"]]
    assert published == [f"127.0.0.1:8000:{port}"]
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe
    assert _env(api)["INDEXER_DATABASE_URL"] == _env(services["indexer"])["INDEXER_DATABASE_URL"]
    assert "INDEXER_API__TOKEN" in _env(api)


def test_the_api_service_config_loads_with_an_empty_token(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes an unset API_TOKEN as an empty string: that means no token, not a config error."""
    from indexer.config import load_settings

    for key in [k for k in os.environ if k.startswith("INDEXER_")]:
        monkeypatch.delenv(key)
    for key, value in _env(services["api"]).items():
        monkeypatch.setenv(key, value)
    assert load_settings(ROOT / "indexer.example.toml").api.token is None
    monkeypatch.setenv("INDEXER_API__TOKEN", "s3cret")
    assert load_settings(ROOT / "indexer.example.toml").api.token == "s3cret"


@pytest.mark.parametrize("name", ["migrate", "indexer", "api"])
def test_every_indexer_command_exists(services: dict[str, Any], name: str) -> None:
    """``indexer <sub command> --help`` exits 0 and lists every option the service passes."""
    cmd = _command(services[name])
    assert cmd[0] == "indexer"
    words = []
    for token in cmd[1:]:
        if token.startswith("-"):
            break
        words.append(token)
    proc = subprocess.run([str(INDEXER), *words, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"`indexer {' '.join(words)}` is not a command: {proc.stdout}{proc.stderr}"
    for option in (t for t in cmd if t.startswith("--")):
        assert option in proc.stdout, f"`indexer {' '.join(words)}` has no option {option}"


def test_the_mounted_config_loads_with_the_services_environment(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The default config file exists and, with the service's environment on top, names the compose database."""
    from indexer.config import load_settings

    svc = services["indexer"]
    mounts = [_interpolate(v).split(":") for v in svc["volumes"]]
    source = next(src for src, target, *_ in mounts if target == "/config/indexer.toml")
    for key in [k for k in os.environ if k.startswith("INDEXER_")]:
        monkeypatch.delenv(key)
    for key, value in _env(svc).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(ROOT / source)
    assert settings.database_url == _env(svc)["INDEXER_DATABASE_URL"]
    assert all(chain.rpc_url == "http://anvil:8545" for chain in settings.chains.values()), "the env names the config's chain"


def test_dockerfile_copies_what_exists_and_installs_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    sources = [src for line in text.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]]
    assert sources and all((ROOT / s).exists() for s in sources), sources
    assert {"pyproject.toml", "indexer", "abis"} <= set(sources)
    assert re.search(r"^RUN pip install \.", text, re.M)
