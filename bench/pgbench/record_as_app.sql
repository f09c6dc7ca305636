-- The statements POST /api/v1/usage/record sends today (webapp.usage.services.record_usage,
-- as captured from SQLAlchemy), in one transaction, without Python in between:
-- what PostgreSQL alone can do on this machine. Variables: first_org, last_org
-- (each request for a random one of them).
\set org random(:first_org, :last_org)
\set nonce random(1, 9000000000000000000)
BEGIN;
SELECT id, organization_id, bot_id, name, prefix, secret_hash, created_by_id, created_at, last_used_at, revoked_at FROM api_keys WHERE organization_id = :org ORDER BY id LIMIT 1 \gset key_
-- (the app looks its key up by the key's unique prefix: the same one-row index scan)
SELECT * FROM subscriptions WHERE organization_id = :org;
SELECT * FROM plans WHERE id = (SELECT plan_id FROM subscriptions WHERE organization_id = :org);
INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity, idempotency_key, period_start, used_after, created_at)
  VALUES (:org, NULL, :key_id, 'message', 1, 'pgbench-' || :client_id || '-' || :nonce,
          date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai', 0, now())
  ON CONFLICT (organization_id, idempotency_key) DO NOTHING RETURNING id AS record_id \gset
INSERT INTO usage_counters (organization_id, period_start, used)
  VALUES (:org, date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai', 0)
  ON CONFLICT (organization_id, period_start) DO NOTHING;
UPDATE usage_counters SET used = used + 1
  WHERE organization_id = :org
    AND period_start = date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'
  RETURNING used \gset
UPDATE usage_records SET used_after = :used WHERE id = :record_id;
INSERT INTO usage_daily (organization_id, day, bot_id, kind, quantity)
  VALUES (:org, (now() AT TIME ZONE 'Asia/Shanghai')::date, 0, 'message', 1)
  ON CONFLICT (organization_id, day, bot_id, kind) DO UPDATE SET quantity = usage_daily.quantity + excluded.quantity;
END;
