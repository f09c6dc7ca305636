from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest.pagination import PaginationParameters

from webapp.extensions import db


def paginate(query: sa.Select[Any], pagination: PaginationParameters) -> list[Any]:
    """One page of a select for `@blp.paginate()`; sets the X-Pagination item count."""
    page = db.paginate(query, page=pagination.page, per_page=pagination.page_size, error_out=False)
    pagination.item_count = page.total or 0
    return list(page.items)
