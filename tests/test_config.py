"""Settings: seed environment names, our own, .env files, and errors naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from mlworker.config import Settings, load_settings
from mlworker.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_run_embedded_with_zero_setup() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./var/mlworker.db"
    assert settings.executor == "local"
    assert settings.port == 8000 and settings.host == "127.0.0.1"
    assert settings.platform_url == settings.database_url
    assert settings.api_keys == {} and settings.cors_origins == ()


def test_seed_names_stay_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/kaireon")
    monkeypatch.setenv("PORT", "8002")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OPTUNA_STORAGE", "sqlite:///optuna.db")
    monkeypatch.setenv("MAX_TRIALS", "100")
    monkeypatch.setenv("MODELS_DIR", "./models")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/kaireon"
    assert settings.port == 8002 and settings.host == "0.0.0.0"
    assert settings.log_level == "DEBUG" and settings.max_trials == 100
    assert settings.optuna_storage == "sqlite:///optuna.db"
    assert settings.artifacts == "./models"


def test_ml_worker_port_wins_over_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("ML_WORKER_PORT", "9001")
    assert load_settings().port == 9001


def test_our_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWORKER_EXECUTOR", "celery")
    monkeypatch.setenv("MLWORKER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("MLWORKER_API_KEYS", "k1:acme, k2:globex")
    monkeypatch.setenv("MLWORKER_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("MLWORKER_DATASET_MEMORY_BUDGET", "512MiB")
    monkeypatch.setenv("MLWORKER_PLATFORM_DATABASE_URL", "postgres://r@db/platform")
    monkeypatch.setenv("MLWORKER_ARTIFACTS", "s3://bucket/mlworker")
    monkeypatch.setenv("MODELS_DIR", "./ignored")
    settings = load_settings()
    assert settings.executor == "celery"
    assert settings.api_keys == {"k1": "acme", "k2": "globex"}
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert int(settings.dataset_memory_budget) == 512 * 1024**2
    assert settings.platform_url == "postgresql+psycopg://r@db/platform"
    assert settings.artifacts == "s3://bucket/mlworker"
    assert settings.visibility_timeout_seconds > settings.job_time_limit_seconds


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=WARNING\nMLWORKER_WORKERS=3\n")
    settings = load_settings()
    assert settings.log_level == "WARNING" and settings.workers == 3


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MLWORKER_EXECUTOR", "bogus", "MLWORKER_EXECUTOR"),
        ("ML_WORKER_PORT", "notaport", "ML_WORKER_PORT"),
        ("ML_WORKER_PORT", "70000", "ML_WORKER_PORT"),
        ("MLWORKER_API_KEYS", "no-tenant-here", "MLWORKER_API_KEYS"),
        ("MLWORKER_API_KEYS", "k:bad tenant", "MLWORKER_API_KEYS"),
        ("MLWORKER_DATASET_MEMORY_BUDGET", "lots", "MLWORKER_DATASET_MEMORY_BUDGET"),
        ("MLWORKER_DATABASE_SCHEMA", "x; drop", "MLWORKER_DATABASE_SCHEMA"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert fragment in str(error.value)


def test_celery_without_broker_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWORKER_EXECUTOR", "celery")
    with pytest.raises(ConfigurationError, match="MLWORKER_BROKER_URL"):
        load_settings()


def test_heartbeat_timeout_must_exceed_two_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWORKER_HEARTBEAT_SECONDS", "10")
    monkeypatch.setenv("MLWORKER_HEARTBEAT_TIMEOUT_SECONDS", "15")
    with pytest.raises(ConfigurationError, match="MLWORKER_HEARTBEAT_TIMEOUT_SECONDS"):
        load_settings()


def test_env_example_documents_every_variable() -> None:
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        assert str(alias.choices[0]) in documented, alias.choices[0]
