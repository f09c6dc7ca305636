from tests.portal.conftest import portal  # noqa: F401  (fixtures used across features)
from tests.usage.conftest import make_tenant, tenant  # noqa: F401
