"""The knowledge base the agent searches: ingest, list and delete documents.

A document belongs to the tenant of the key that added it, or is shared (added by an admin key
with `shared: true`). A key lists and searches its tenant's documents and the shared ones,
deletes only its tenant's, and only an admin key adds or deletes shared ones. Another tenant's
document is answered as absent, never as forbidden, so ids reveal nothing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select

from agent_service.api.deps import CurrentKey, DatabaseDep, DocumentsWriter
from agent_service.api.pagination import decode_cursor, encode_cursor
from agent_service.api.schemas import DocumentCreate, DocumentOut, DocumentPage, ErrorBody
from agent_service.auth.keys import Principal
from agent_service.db.models import Document

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody},
    503: {"model": ErrorBody}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 403: {"model": ErrorBody}}
COLUMNS = (Document.id, Document.title, Document.source, Document.created_at,
           func.length(Document.content).label("characters"),
           Document.tenant.is_(None).label("shared"))


def visible_to(key: Principal) -> ColumnElement[bool]:
    return or_(Document.tenant == key.tenant, Document.tenant.is_(None))


@router.post("", status_code=201, response_model=DocumentOut, responses=WRITE_ERRORS)
async def ingest(body: DocumentCreate, key: DocumentsWriter, db: DatabaseDep) -> DocumentOut:
    """Add a document to the key's tenant (or, from an admin key, a shared one); it is
    searchable as soon as this returns."""
    if body.shared and not key.may("admin"):
        raise HTTPException(403, "only an admin key may add shared documents")
    document_id = uuid.uuid4()
    await db.execute(insert(Document).values(
        id=document_id, title=body.title, content=body.content, source=body.source,
        tenant=None if body.shared else key.tenant))
    row = (await db.execute(select(*COLUMNS).where(Document.id == document_id))).one()
    return DocumentOut.model_validate(row._mapping)


@router.get("", response_model=DocumentPage, responses={**ERRORS, 400: {"model": ErrorBody}})
async def list_documents(
    key: CurrentKey, db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DocumentPage:
    """The tenant's documents and the shared ones, newest first, a page at a time."""
    query = select(*COLUMNS).where(visible_to(key))
    if cursor:
        created_at, last_id = decode_cursor(cursor)
        query = query.where(or_(Document.created_at < created_at,
                                and_(Document.created_at == created_at, Document.id < last_id)))
    rows = (await db.execute(query.order_by(Document.created_at.desc(), Document.id.desc())
                             .limit(limit + 1))).all()
    page = rows[:limit]
    following = (encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit
                 else None)
    return DocumentPage(items=[DocumentOut.model_validate(r._mapping) for r in page],
                        next_cursor=following)


@router.delete("/{document_id}", status_code=204,
               responses={**WRITE_ERRORS, 404: {"model": ErrorBody}})
async def remove(document_id: uuid.UUID, key: DocumentsWriter, db: DatabaseDep) -> Response:
    """Delete one of the tenant's documents (a shared one: admin keys only); runs that already
    cited it keep their citations."""
    found = (await db.execute(select(Document.tenant).where(Document.id == document_id,
                                                            visible_to(key)))).first()
    if found is None:
        raise HTTPException(404, f"document {document_id} not found")
    if found.tenant is None and not key.may("admin"):
        raise HTTPException(403, "only an admin key may delete shared documents")
    await db.execute(delete(Document).where(Document.id == document_id))
    return Response(status_code=204)
