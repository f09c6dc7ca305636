from __future__ import annotations

from typing import Any

import pytest

from tests.bots import create_bot, create_key
from tests.conftest import ApiClient
from tests.portal.conftest import logged_in, make_portal, portal  # noqa: F401  (portal fixtures)


@pytest.fixture
def bot(api_client: ApiClient, org: dict[str, Any]) -> dict[str, Any]:
    """A bot of `org` (the free plan's only one)."""
    return create_bot(api_client, "售前客服", description="回答售前问题", greeting="您好！")


@pytest.fixture
def api_key(api_client: ApiClient, org: dict[str, Any]) -> dict[str, Any]:
    """An API key of `org`, not bound to a bot; `key` holds the full secret."""
    return create_key(api_client, "官网挂件")


# Rows newer than the test are deleted in this order; bots, keys, members and
