-- Per-tenant retention overrides (mc-core RetentionStore, used by mc-lifecycle).
--
-- One row per (tenant, kind) that has an override; no row means the kind's default
-- applies. The period is stored as written (`30d`, `10y`); mc-lifecycle parses and
-- bounds-checks it when it reads it, and refuses to purge on one it cannot accept.
-- A change commits in the same transaction as its `mc.lifecycle.override` audit
-- event, under the tenant's audit-head lock.

CREATE TABLE mc_retention_overrides (
    tenant     text        NOT NULL,
    kind       text        NOT NULL CHECK (kind ~ '^[a-z0-9-]{1,64}$'),
    ttl        text        NOT NULL CHECK (octet_length(ttl) BETWEEN 1 AND 32),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, kind)
);
