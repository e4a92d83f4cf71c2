"""A review survives its processes: the versions run ends after the previews (nothing waits
for the decision), and an approving process killed with SIGKILL half way through publishing
is resumed by approving the same take again, which publishes it exactly once."""

from __future__ import annotations

import os
import signal

import pytest

from tests.reliability.conftest import (
    PROMPT,
    Lineage,
    cli,
    cli_env,
    failpoints,
    needs_model,
    spawn,
    tenant_slug,
    wait_paused,
)


@pytest.mark.slow
@needs_model
def test_an_approval_killed_while_publishing_is_resumed_and_publishes_once(stack):
    tenant = tenant_slug("rv-kill")
    opened = cli("generate", PROMPT, "--versions", "2", "--review", "--tenant", tenant)
    assert opened.code == 0, opened.stderr[-2000:]
    review = opened.payload["review_id"]
    graph = Lineage(stack)
    assert [a for a in graph.assets(tenant) if a.published_uri] == []

    # published and recorded, the run not finished, then kill -9
    value = failpoints("published:1:pause")
    proc = spawn("review", "approve", review, "--pick", "2", "--tenant", tenant,
                 env=cli_env(REELFORGE_FAILPOINTS=value))  # fmt: skip
    wait_paused("published", value, stack.home_dir, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    waiting = cli("review", "show", review, "--tenant", tenant)
    assert waiting.payload["status"] == "approved"  # decided, its publishing unfinished

    again = cli("review", "approve", review, "--pick", "2", "--tenant", tenant)
    assert again.code == 0, again.stderr[-2000:]
    done = cli("review", "show", review, "--tenant", tenant)
    assert done.payload["status"] == "published" and done.payload["pick"] == 2

    published = [a for a in graph.assets(tenant) if a.published_uri]
    assert sorted(a.kind for a in published) == ["rendition", "thumbnail"]
    assert (
        str(published[0].id if published[0].kind == "rendition" else published[1].id)
        == (again.payload["asset_id"])
    )
    publishes = graph.rows(
        "SELECT count(*) FROM activities act JOIN tenants t ON t.id = act.tenant_id "
        "WHERE t.slug = :slug AND act.stage = 'publish' AND act.status = 'succeeded'",
        slug=tenant,
    )
    assert publishes[0][0] == 1  # recorded once
    decisions = graph.rows(
        "SELECT count(*) FROM activities act JOIN tenants t ON t.id = act.tenant_id "
        "WHERE t.slug = :slug AND act.stage = 'review_decision'",
        slug=tenant,
    )
    assert decisions[0][0] == 1
    assert graph.orphans(tenant) == []
    _, public = graph.objects(tenant)
    assert public == {a.published_uri for a in published}

    # a different take now is a second decision: refused
    late = cli("review", "approve", review, "--pick", "1", "--tenant", tenant)
    assert late.code == 2 and "already decided" in late.payload["error"]
