from __future__ import annotations

from reelforge.core.settings import Settings


def test_defaults_point_at_the_embedded_stack(monkeypatch, tmp_path):
    for var in ("REELFORGE_DATABASE_URL", "REELFORGE_S3_ENDPOINT", "PREFECT_API_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(home=tmp_path)
    assert (
        settings.uses_embedded_postgres
        and settings.uses_embedded_s3
        and settings.uses_local_prefect
    )
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_external_services_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("REELFORGE_DATABASE_URL", "postgresql+psycopg://u:hunter2@db:5432/rf")
    monkeypatch.setenv("REELFORGE_S3_ENDPOINT", "minio:9000")
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect:4200/api")
    settings = Settings()
    assert not settings.uses_embedded_postgres
    assert settings.s3_address == "minio:9000"
    assert settings.prefect_api == "http://prefect:4200/api"
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:hunter2@db:5432/rf"


def test_secrets_stay_out_of_reprs_and_dumps(monkeypatch):
    monkeypatch.setenv("REELFORGE_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/rf")
    monkeypatch.setenv("REELFORGE_S3_SECRET_KEY", "s3-very-secret")
    settings = Settings()
    for text in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert "hunter2" not in text
        assert "s3-very-secret" not in text
