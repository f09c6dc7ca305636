from tests.usage.conftest import make_tenant, tenant  # noqa: F401  (tenant fixtures)
