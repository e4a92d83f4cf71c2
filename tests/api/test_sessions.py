"""Dashboard sessions end at logout and at key revocation; keys expire; every response carries
the security headers; only operators see Prefect; a tenant may name only its own policies."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

TEMPLATES = Path(__file__).resolve().parents[2] / "reelforge" / "api" / "templates"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html[:500]
    return match.group(1)


def _login(app, key: str):
    """A fresh client logged in with ``key`` (its own cookie jar)."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    page = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"csrf": _csrf(page.text), "api_key": key},
        follow_redirects=False,
    )
    return client, response


def _expire(key_id_or_prefix: str) -> None:
    from sqlalchemy import update

    from db.models import ApiKey
    from db.session import session_scope

    with session_scope() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == key_id_or_prefix)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def _prefix(key: str) -> str:
    return key.split("_")[1]


def test_logout_ends_the_session_for_the_old_cookie_too(app, make_tenant):
    tenant = make_tenant("sess")
    client, response = _login(app, tenant.key)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/runs"
    old_cookie = client.cookies.get("rf_session")
    assert old_cookie and tenant.key not in old_cookie
    runs = client.get("/dashboard/runs")
    assert runs.status_code == 200 and tenant.slug in runs.text
    out = client.post("/dashboard/logout", data={"csrf": _csrf(runs.text)}, follow_redirects=False)
    assert out.status_code == 303
    # the old cookie, replayed after logout, is worth nothing
    from fastapi.testclient import TestClient

    replay = TestClient(app, cookies={"rf_session": old_cookie})
    again = replay.get("/dashboard/runs", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/dashboard/login"


def test_revoking_the_key_ends_its_sessions_at_once(app, make_tenant):
    from db.session import session_scope
    from reelforge.api.keys import revoke_key

    tenant = make_tenant("sess")
    client, _ = _login(app, tenant.key)
    assert client.get("/dashboard/runs", follow_redirects=False).status_code == 200
    with session_scope() as session:
        assert revoke_key(session, _prefix(tenant.key)) is not None
    gone = client.get("/dashboard/runs", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/dashboard/login"


def test_expired_key_gets_a_one_line_401_naming_the_key(client, app, make_tenant):
    tenant = make_tenant("exp")
    session_client, _ = _login(app, tenant.key)
    assert client.get("/v1/videos", headers=tenant.headers).status_code == 200
    _expire(_prefix(tenant.key))
    from reelforge.api import keys

    keys._cache.clear()  # this process's 10 s cache; another process sees it within 10 s
    response = client.get("/v1/videos", headers=tenant.headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert "\n" not in error and "expired" in error
    assert f"rf_{_prefix(tenant.key)}_" in error and tenant.key not in error
    assert f"reelforge api-key create {tenant.slug}" in error
    # a wrong secret with the same prefix is just invalid: nothing about the key is told
    wrong = tenant.key[:-1] + ("B" if tenant.key[-1] != "B" else "C")
    bad = client.get("/v1/videos", headers={"Authorization": f"Bearer {wrong}"})
    assert bad.status_code == 401 and "expired" not in bad.json()["error"]
    # the session opened before the expiry ends too, and a new login says why
    assert session_client.get("/dashboard/runs", follow_redirects=False).status_code == 303
    _, login = _login(app, tenant.key)
    assert login.status_code == 401 and "expired" in login.text


SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize("path", ["/dashboard/login", "/v1/videos", "/healthz", "/static/app.js"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path, follow_redirects=False)
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (path, name)
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no other origin
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_templates_have_no_inline_script_or_handlers():
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{template.name}: inline script {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name}: inline event handler"
        assert "javascript:" not in text and "style=" not in text, template.name


def test_only_operators_see_prefect(app, client, make_tenant, stack):
    from db.session import session_scope
    from reelforge.api.keys import create_key

    tenant = make_tenant("prefect-hidden")
    job = client.post("/v1/videos", json={"prompt": "a red ball"}, headers=tenant.headers).json()
    from db.models import JobRecord

    run_id = uuid.uuid4()
    with session_scope() as session:
        session.get_one(JobRecord, uuid.UUID(job["id"])).flow_run_id = run_id
        key, _ = create_key(session, tenant.slug, "ops", operator=True)
    prefect_ui = stack.prefect_api.removesuffix("/api")
    plain, _ = _login(app, tenant.key)
    for path in ("/dashboard/runs", f"/dashboard/runs/{job['id']}", "/dashboard/campaigns"):
        page = plain.get(path)
        assert page.status_code == 200, path
        assert prefect_ui not in page.text and "Prefect UI" not in page.text, path
    details = plain.get(f"/dashboard/runs/{job['id']}").text
    assert str(run_id) in details and 'id="run-status">queued<' in details
    operator, _ = _login(app, key)
    page = operator.get("/dashboard/runs").text
    assert f'href="{prefect_ui}"' in page and f"{prefect_ui}/runs/flow-run/{run_id}" in page


def test_run_details_are_the_tenants_own(app, client, make_tenant):
    a, b = make_tenant("det-a"), make_tenant("det-b")
    job = client.post("/v1/videos", json={"prompt": "a red ball"}, headers=a.headers).json()
    mine, _ = _login(app, a.key)
    assert "a red ball" in mine.get(f"/dashboard/runs/{job['id']}").text
    theirs, _ = _login(app, b.key)
    other = theirs.get(f"/dashboard/runs/{job['id']}")
    assert other.status_code == 404 and "a red ball" not in other.text


@pytest.fixture
def tenant_policies(tmp_path, monkeypatch):
    """A policy dir with one policy of tenant A; settings read it from the environment."""
    from reelforge.core.settings import get_settings

    def write(name: str, tenant: str) -> None:
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nversion: '1'\ntenant: {tenant}\n"
            "visual:\n  classes: {FACE_MALE: {threshold: 0.6}}\n",
            encoding="utf-8",
        )

    monkeypatch.setenv("REELFORGE_SAFETY_POLICY_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield write
    monkeypatch.delenv("REELFORGE_SAFETY_POLICY_DIR")
    get_settings.cache_clear()


def test_a_tenant_names_only_its_own_and_shipped_policies(client, make_tenant, tenant_policies):
    a, b = make_tenant("pol-a"), make_tenant("pol-b")
    tenant_policies(f"{a.slug}-brand", a.slug)
    body = {"prompt": "a red ball", "policy": f"{a.slug}-brand"}
    assert client.post("/v1/videos", json=body, headers=a.headers).status_code == 202
    other = client.post("/v1/videos", json=body, headers=b.headers)
    assert other.status_code == 404
    assert f"unknown safety policy '{a.slug}-brand'" in other.json()["error"]
    assert a.slug not in other.json()["error"].split(":", 1)[1]  # A's names are not listed
    shipped = {"prompt": "a red ball", "policy": "test-faces"}
    assert client.post("/v1/videos", json=shipped, headers=b.headers).status_code == 202
    campaign = {"name": "c", "policy": f"{a.slug}-brand", "products": [{"sku": "a", "name": "A", "prompt": "p"}]}  # fmt: skip
    assert client.post("/v1/campaigns", json=campaign, headers=b.headers).status_code == 404
    assert client.get("/v1/videos", headers=b.headers).json()["count"] == 1  # nothing queued


def test_cli_refuses_another_tenants_policy_with_exit_2(make_tenant, tenant_policies):
    from reelforge.cli.app import app as cli_app

    a = make_tenant("pol-a")
    tenant_policies(f"{a.slug}-brand", a.slug)
    result = CliRunner().invoke(
        cli_app,
        [
            "generate",
            "a red ball",
            "--tenant",
            "someone-else",
            "--policy",
            f"{a.slug}-brand",
            "--json",
        ],
    )
    assert result.exit_code == 2, result.output
    failure = json.loads(result.stdout)
    assert failure["ok"] is False and "unknown safety policy" in failure["error"]


def _cli(*args: str) -> tuple[int, dict]:
    from reelforge.cli.app import app as cli_app

    result = CliRunner().invoke(cli_app, ["api-key", *args, "--json"])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # exactly one JSON object
    return result.exit_code, json.loads(lines[0])


def test_api_key_create_list_revoke(client, stack):
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    code, made = _cli("create", tenant, "--expires-in", "30d", "--operator", "--name", "ci")
    assert code == 0 and made["operator"] is True
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    key = made["key"]
    assert client.get("/v1/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    code, listed = _cli("list", "--tenant", tenant)
    assert code == 0 and listed["count"] == 1
    (row,) = listed["keys"]
    assert row["id"] == made["id"] and row["state"] == "active" and row["operator"] is True
    assert key not in json.dumps(listed)
    code, revoked = _cli("revoke", made["id"])
    assert code == 0 and revoked["prefix"] == made["prefix"]
    assert _cli("list", "--tenant", tenant)[1]["keys"][0]["state"] == "revoked"
    assert client.get("/v1/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    code, again = _cli("revoke", made["id"])
    assert code == 2 and "no active key" in again["error"] and "api-key list" in again["error"]


@pytest.mark.parametrize("duration", ["30x", "0d", "-1d", "d", "1.5d"])
def test_api_key_create_refuses_a_bad_expiry(stack, duration):
    code, failure = _cli("create", f"cli-{uuid.uuid4().hex[:8]}", "--expires-in", duration)
    assert code == 2 and failure["ok"] is False
    assert "bad duration" in failure["error"] and "30d" in failure["error"]
