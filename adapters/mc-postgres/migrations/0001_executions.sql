-- Executions, idempotency records and flags.
--
-- Every primary key starts with the tenant (DESIGN.md rule 3). Identifiers use the
-- "C" collation so that `ORDER BY id` is byte order, exactly like `ExecutionId: Ord`
-- in mc-core (and cheaper than a locale collation).
--
-- Timestamps are split into a `timestamptz` (microseconds, readable by any SQL tool)
-- and the sub-microsecond remainder in nanoseconds (`*_sub_ns`, 0..999), because an
-- `OffsetDateTime` carries nanoseconds and a value must read back identical to what
-- was written. Ordering and filters use the pair `(created_at, created_sub_ns)`.

CREATE TABLE mc_executions (
    tenant          text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    state           text NOT NULL
                    CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt         bigint NOT NULL CHECK (attempt BETWEEN 1 AND 4294967295),
    manifest_digest text NOT NULL CHECK (manifest_digest ~ '^[0-9a-f]{64}$'),
    inputs_digest   text NOT NULL CHECK (inputs_digest ~ '^[0-9a-f]{64}$'),
    parent          text COLLATE "C",
    root            text COLLATE "C" NOT NULL,
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    -- Optimistic concurrency: every committed change increments it.
    version         bigint NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL,
    created_sub_ns  smallint NOT NULL DEFAULT 0 CHECK (created_sub_ns BETWEEN 0 AND 999),
    updated_at      timestamptz NOT NULL,
    updated_sub_ns  smallint NOT NULL DEFAULT 0 CHECK (updated_sub_ns BETWEEN 0 AND 999),
    PRIMARY KEY (tenant, id)
);

-- Search: newest first per tenant, keyset pagination on (created, id). A backward scan
-- of this index serves `ORDER BY created_at DESC, created_sub_ns DESC, id DESC` and the
-- row comparison of the cursor as an index condition.
CREATE INDEX mc_executions_by_created
    ON mc_executions (tenant, created_at, created_sub_ns, id);

-- Search filtered by one or a few states (e.g. "running" on a tenant whose history is
-- mostly "succeeded").
CREATE INDEX mc_executions_by_state_created
    ON mc_executions (tenant, state, created_at, created_sub_ns, id);

-- Label filter: `labels @> '{"team":"payments"}'`.
CREATE INDEX mc_executions_labels
    ON mc_executions USING gin (labels jsonb_path_ops);

-- One record per (tenant, key): the unique key is what makes a repeated request a
-- replay across every replica sharing the database (DESIGN.md rule 9).
CREATE TABLE mc_idempotency (
    tenant          text COLLATE "C" NOT NULL,
    key             text COLLATE "C" NOT NULL,
    fingerprint     text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    -- `json`, not `jsonb`: the outcome is returned byte-for-byte as recorded.
    outcome         json NOT NULL,
    created_at      timestamptz NOT NULL,
    created_sub_ns  smallint NOT NULL DEFAULT 0 CHECK (created_sub_ns BETWEEN 0 AND 999),
    PRIMARY KEY (tenant, key)
);

-- Per-tenant release flags (spec section 9). A missing row is "off".
CREATE TABLE mc_flags (
    tenant      text COLLATE "C" NOT NULL,
    flag        text NOT NULL CHECK (flag IN ('console_actions_enabled', 'evidence_v2_enabled',
                                              'egress_policy_enforce', 'drift_pr_bot_enabled')),
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, flag)
);
