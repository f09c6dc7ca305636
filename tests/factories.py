"""factory_boy factories; they flush into the current `db.session` (use inside an app context)."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from webapp.auth.models import User
from webapp.auth.services import hash_password
from webapp.extensions import db
from webapp.orgs.models import Organization

DEFAULT_PASSWORD = "correct-horse-battery"


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name", locale="zh_CN")
    password_hash = factory.LazyFunction(lambda: hash_password(DEFAULT_PASSWORD))


class OrganizationFactory(BaseFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"公司 {n}")
