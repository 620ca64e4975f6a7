"""Two tenants, and keys with and without scopes, against every endpoint: a key sees and
changes only what its tenant owns, shared documents are admin-managed, and a missing scope is
a 403 that names it."""

from __future__ import annotations

import uuid

import httpx
import pytest
from support import new_key, running_worker, wait_for_status

from agent_service.core.config import Settings

pytestmark = pytest.mark.anyio
QUESTION = {"question": "How do readiness probes gate a rolling update?", "max_sources": 3}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def document(client: httpx.AsyncClient, key: dict[str, str], title: str,
                   shared: bool = False) -> httpx.Response:
    return await client.post("/api/v1/documents", headers=key, json={
        "title": title, "shared": shared,
        "content": f"{title}: readiness probes gate every rolling update."})


async def test_documents_are_per_tenant(client: httpx.AsyncClient, settings: Settings) -> None:
    alice = bearer(await new_key(settings, "alice", tenant="acme"))
    alice_colleague = bearer(await new_key(settings, "alice-2", tenant="acme"))
    bob = bearer(await new_key(settings, "bob", tenant="globex"))
    mine = (await document(client, alice, "Acme runbook")).json()
    theirs = (await document(client, bob, "Globex runbook")).json()
    assert mine["shared"] is False

    def titles(response: httpx.Response) -> list[str]:
        return [d["title"] for d in response.json()["items"]]

    assert titles(await client.get("/api/v1/documents", headers=alice)) == ["Acme runbook"]
    assert titles(await client.get("/api/v1/documents", headers=alice_colleague)) == [
        "Acme runbook"]
    assert titles(await client.get("/api/v1/documents", headers=bob)) == ["Globex runbook"]
    # Another tenant's document is absent, whether it exists or not.
    refused = await client.delete(f"/api/v1/documents/{mine['id']}", headers=bob)
    missing = await client.delete(f"/api/v1/documents/{uuid.uuid4()}", headers=bob)
    assert (refused.status_code, missing.status_code) == (404, 404)
    assert refused.json()["error"]["message"] == f"document {mine['id']} not found"
    assert titles(await client.get("/api/v1/documents", headers=alice)) == ["Acme runbook"]
    # The same tenant's other key may manage it.
    assert (await client.delete(f"/api/v1/documents/{mine['id']}",
                                headers=alice_colleague)).status_code == 204
    assert (await client.delete(f"/api/v1/documents/{theirs['id']}",
                                headers=bob)).status_code == 204


async def test_shared_documents_are_seen_by_all_and_managed_by_admins(
        client: httpx.AsyncClient, settings: Settings) -> None:
    admin = bearer(await new_key(settings, "ops", tenant="ops", scopes=["admin"]))
    alice = bearer(await new_key(settings, "alice", tenant="acme"))
    refused = await document(client, alice, "Everyone's handbook", shared=True)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "only an admin key may add shared documents"
    shared = await document(client, admin, "Everyone's handbook", shared=True)
    assert shared.status_code == 201 and shared.json()["shared"] is True
    listed = (await client.get("/api/v1/documents", headers=alice)).json()["items"]
    assert [(d["title"], d["shared"]) for d in listed] == [("Everyone's handbook", True)]
    doc_id = shared.json()["id"]
    denied = await client.delete(f"/api/v1/documents/{doc_id}", headers=alice)
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "only an admin key may delete shared documents"
    assert (await client.delete(f"/api/v1/documents/{doc_id}", headers=admin)).status_code == 204


@pytest.mark.parametrize(("method", "path", "body", "scope"), [
    ("POST", "/api/v1/research", QUESTION, "runs:write"),
    ("POST", "/api/v1/research/{run}/cancel", None, "runs:write"),
    ("POST", "/api/v1/documents", {"title": "t", "content": "c"}, "documents:write"),
    ("DELETE", "/api/v1/documents/{document}", None, "documents:write"),
])
async def test_a_key_without_the_scope_gets_a_403_naming_it(
        client: httpx.AsyncClient, settings: Settings, method: str, path: str,
        body: dict[str, object] | None, scope: str) -> None:
    writer = bearer(await new_key(settings, "writer"))
    run = (await client.post("/api/v1/research", json=QUESTION, headers=writer)).json()["id"]
    doc = (await document(client, writer, "Scoped")).json()["id"]
    reader = bearer(await new_key(settings, "reader", scopes=[]))
    response = await client.request(method, path.format(run=run, document=doc), json=body,
                                    headers=reader)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden", "request_id": response.headers["x-request-id"],
        "message": f"this key lacks the scope {scope}; its scopes: none"}
    # Reading needs no scope: the same key lists its tenant's documents.
    assert (await client.get("/api/v1/documents", headers=reader)).status_code == 200


async def test_runs_are_per_key_on_every_run_endpoint(client: httpx.AsyncClient,
                                                      settings: Settings) -> None:
    alice = bearer(await new_key(settings, "alice", tenant="acme"))
    alice_colleague = bearer(await new_key(settings, "alice-2", tenant="acme"))
    run = (await client.post("/api/v1/research", json=QUESTION, headers=alice)).json()["id"]
    for other in (alice_colleague, bearer(await new_key(settings, "bob", tenant="globex"))):
        assert (await client.get(f"/api/v1/research/{run}", headers=other)).status_code == 404
        assert (await client.get(f"/api/v1/research/{run}/events",
                                 headers=other)).status_code == 404
        assert (await client.post(f"/api/v1/research/{run}/cancel",
                                  headers=other)).status_code == 404
        assert (await client.get("/api/v1/research", headers=other)).json()["items"] == []
    assert (await client.get(f"/api/v1/research/{run}", headers=alice)).json()["status"] == \
        "queued"


async def test_a_run_cites_only_its_tenants_and_the_shared_documents(
        client: httpx.AsyncClient, settings: Settings) -> None:
    admin = bearer(await new_key(settings, "ops", tenant="ops", scopes=["admin"]))
    alice = bearer(await new_key(settings, "alice", tenant="acme"))
    bob = bearer(await new_key(settings, "bob", tenant="globex"))
    await document(client, alice, "Acme readiness")
    await document(client, bob, "Globex readiness")
    await document(client, admin, "Shared readiness", shared=True)
    run = (await client.post("/api/v1/research", headers=alice,
                             json={**QUESTION, "max_sources": 5})).json()["id"]
    async with running_worker(settings):
        finished = await wait_for_status(client, alice, run)
    assert finished["status"] == "succeeded", finished
    assert sorted(s["title"] for s in finished["sources"]) == ["Acme readiness",
                                                               "Shared readiness"]
