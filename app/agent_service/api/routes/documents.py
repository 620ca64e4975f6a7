"""The knowledge base the agent searches: ingest, list and delete documents."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import and_, delete, func, or_, select

from agent_service.api.deps import CurrentKey, SessionDep
from agent_service.api.pagination import decode_cursor, encode_cursor
from agent_service.api.schemas import DocumentCreate, DocumentOut, DocumentPage, ErrorBody
from agent_service.db.models import Document

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody}}
COLUMNS = (Document.id, Document.title, Document.source, Document.created_at,
           func.length(Document.content).label("characters"))


@router.post("", status_code=201, response_model=DocumentOut, responses=ERRORS)
async def ingest(body: DocumentCreate, key: CurrentKey, db: SessionDep) -> DocumentOut:
    """Add a document; it is searchable as soon as this returns."""
    document = Document(id=uuid.uuid4(), title=body.title, content=body.content,
                        source=body.source)
    db.add(document)
    await db.commit()
    row = (await db.execute(select(*COLUMNS).where(Document.id == document.id))).one()
    return DocumentOut.model_validate(row._mapping)


@router.get("", response_model=DocumentPage, responses={**ERRORS, 400: {"model": ErrorBody}})
async def list_documents(
    key: CurrentKey, db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DocumentPage:
    """Documents, newest first, a page at a time."""
    query = select(*COLUMNS)
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


@router.delete("/{document_id}", status_code=204, responses={**ERRORS, 404: {"model": ErrorBody}})
async def remove(document_id: uuid.UUID, key: CurrentKey, db: SessionDep) -> Response:
    """Delete a document; runs that already cited it keep their citations."""
    result = await db.execute(delete(Document).where(Document.id == document_id)
                              .returning(Document.id))
    await db.commit()
    if result.first() is None:
        raise HTTPException(404, f"document {document_id} not found")
    return Response(status_code=204)
