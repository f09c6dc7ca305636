-- The fix proposed in bench/README.md: the same work, but the hot rows (the month's
-- counter, today's rollup row) are touched by ONE statement right before COMMIT, so
-- their row locks are held for one round trip plus the commit instead of four
-- statements plus Python. The record is inserted first (idempotency), the counter is
-- an upsert (no separate INSERT ... DO NOTHING, which also waits on the hot row), and
-- the plan comes with the subscription in one query. Variables: first_org, last_org
-- (each request for a random one of them).
\set org random(:first_org, :last_org)
\set nonce random(1, 9000000000000000000)
BEGIN;
SELECT id, organization_id, bot_id, secret_hash, revoked_at FROM api_keys WHERE organization_id = :org ORDER BY id LIMIT 1 \gset key_
-- (the app looks its key up by the key's unique prefix: the same one-row index scan)
SELECT p.* FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.organization_id = :org;
INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity, idempotency_key, period_start, used_after, created_at)
  VALUES (:org, NULL, :key_id, 'message', 1, 'pgbench-' || :client_id || '-' || :nonce,
          date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai', 0, now())
  ON CONFLICT (organization_id, idempotency_key) DO NOTHING RETURNING id AS record_id \gset
WITH counter AS (
  INSERT INTO usage_counters (organization_id, period_start, used)
  VALUES (:org, date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai', 1)
  ON CONFLICT (organization_id, period_start) DO UPDATE SET used = usage_counters.used + excluded.used
  -- a plan with a quota adds: WHERE usage_counters.used + excluded.used <= <limit>
  RETURNING used
), daily AS (
  INSERT INTO usage_daily (organization_id, day, bot_id, kind, quantity)
  SELECT :org, (now() AT TIME ZONE 'Asia/Shanghai')::date, 0, 'message', 1 FROM counter
  ON CONFLICT (organization_id, day, bot_id, kind) DO UPDATE SET quantity = usage_daily.quantity + excluded.quantity
)
UPDATE usage_records SET used_after = counter.used FROM counter WHERE usage_records.id = :record_id;
END;
