"""Fixtures shared by every test package."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import AliasChoices

from mlworker.config import Settings
from tests.support import AMQP_URL, POSTGRES_URL, REDIS_URL, require_service, settings_for

SettingsFactory = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's ML Worker environment or ``.env`` file."""
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            for name in alias.choices:
                monkeypatch.delenv(str(name), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Build settings on a private SQLite file, data root and artifact root."""

    def factory(**overrides: Any) -> Settings:
        return settings_for(tmp_path, **overrides)

    return factory


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test's ML Worker tables, dropped afterwards."""
    schema = f"mlwt_{secrets.token_hex(4)}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture
def amqp_url() -> Iterator[str]:
    require_service("RabbitMQ", AMQP_URL)
    yield AMQP_URL


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker queue private to this test; deleted from RabbitMQ afterwards."""
    name = f"mlwt-{secrets.token_hex(4)}"
    yield name
    if "amqp_url" in request.fixturenames:
        from kombu import Connection

        try:
            with Connection(AMQP_URL, connect_timeout=2) as connection:
                connection.default_channel.queue_delete(name)
        except Exception:  # the queue may never have been declared
            pass


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> Callable[..., Settings]:
    """Settings factory on each metadata store: the store contract runs on both."""
    if request.param == "sqlite":
        return make_settings
    schema = request.getfixturevalue("pg_schema")
    url = request.getfixturevalue("postgres_url")

    def factory(**overrides: Any) -> Settings:
        return make_settings(database_url=url, database_schema=schema, **overrides)

    return factory
