"""usage: idempotency keys unique per scope (the usage API's, or one conversation's)

Customer messages used to meter under the usage key `msg:<conversation>:<key>`, in
the same namespace as the keys clients send to the usage API, so a client key of
that shape answered for the message (which then failed on every retry). Each key
now has a scope: `api` for the usage API, `conversation:<id>` for a message.

Existing message keys move to their conversation's scope: a record whose key is
`msg:<conversation>:<key>` and for which that conversation holds a message with that
key in the same organization was metered for the message (had a client sent the key
first, the message could never have been stored). Every other key stays in `api`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_UNIQUE = "uq_usage_records_organization_id"
NEW_UNIQUE = "uq_usage_records_idempotency"

# The join runs on the unique index (organization, scope, key) of usage_records.
MOVE_MESSAGE_KEYS = """
UPDATE usage_records
SET idempotency_scope = 'conversation:' || m.conversation_id,
    idempotency_key = m.idempotency_key
FROM messages AS m
WHERE m.idempotency_key IS NOT NULL
  AND usage_records.organization_id = m.organization_id
  AND usage_records.idempotency_scope = 'api'
  AND usage_records.idempotency_key = 'msg:' || m.conversation_id || ':' || m.idempotency_key
"""

# Back to one namespace. A client key `msg:<c>:<k>` recorded next to message <k> of
# conversation <c> is exactly the collision this revision removed: the downgrade then
# fails on the old unique constraint rather than merge two records.
RESTORE_MESSAGE_KEYS = """
UPDATE usage_records
SET idempotency_key = 'msg:' || substr(idempotency_scope, length('conversation:') + 1)
                      || ':' || idempotency_key,
    idempotency_scope = 'api'
WHERE idempotency_scope LIKE 'conversation:%'
"""


def upgrade():
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "idempotency_scope", sa.String(length=64), server_default="api", nullable=False
            )
        )
        batch_op.create_unique_constraint(
            NEW_UNIQUE, ["organization_id", "idempotency_scope", "idempotency_key"]
        )
        batch_op.drop_constraint(OLD_UNIQUE, type_="unique")
    op.execute(MOVE_MESSAGE_KEYS)


def downgrade():
    op.execute(RESTORE_MESSAGE_KEYS)
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_unique_constraint(OLD_UNIQUE, ["organization_id", "idempotency_key"])
        batch_op.drop_constraint(NEW_UNIQUE, type_="unique")
        batch_op.drop_column("idempotency_scope")
