from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest.pagination import PaginationParameters

from webapp.extensions import db

# PostgreSQL's OFFSET is a bigint: a page starting past it can only be empty.
MAX_SQL_OFFSET = 2**63 - 1


def paginate(query: sa.Select[Any], pagination: PaginationParameters) -> list[Any]:
    """One page of a select for `@blp.paginate()`; sets the X-Pagination item count."""
    if (pagination.page - 1) * pagination.page_size > MAX_SQL_OFFSET:
        count = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        pagination.item_count = db.session.scalar(count) or 0
        return []
    page = db.paginate(query, page=pagination.page, per_page=pagination.page_size, error_out=False)
    pagination.item_count = page.total or 0
    return list(page.items)
