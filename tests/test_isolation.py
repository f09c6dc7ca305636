from webapp.auth.models import User
from webapp.extensions import db


def test_register_creates_user_and_returns_tokens(app, client):
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "New@Example.com", "password": "long-enough-pw", "name": "张三"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["email"] == "new@example.com"
    assert body["access_token"] and body["refresh_token"]
    with app.app_context():
        assert (
            db.session.scalar(db.select(User.name).where(User.email == "new@example.com")) == "张三"
        )


def test_each_test_starts_with_no_users_from_other_tests(app):
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "new@example.com")) is None
