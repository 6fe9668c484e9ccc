-- The hash-chained, append-only audit log (DESIGN.md rule 4).
--
-- One chain per tenant. The schema itself enforces what the Rust code promises, so a
-- bug (or a hand-written statement) cannot break it:
--   * the primary key (tenant, seq) means the chain cannot fork;
--   * an insert must link to its predecessor (seq 1 links to the genesis hash, seq n
--     to the stored hash of seq n-1), so it cannot leave a gap either;
--   * UPDATE, DELETE and TRUNCATE are rejected by triggers: append-only.
-- Appends serialise per tenant on the row of `mc_audit_heads` (locked by the writer
-- for the rest of its transaction), so concurrent appends from many connections and
-- replicas stay contiguous.

CREATE TABLE mc_audit_events (
    tenant          text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 1),
    id              text NOT NULL,
    kind            text NOT NULL,
    actor_sub       text NOT NULL,
    execution_id    text COLLATE "C",
    resource        text,
    -- `json`, not `jsonb`: kept exactly as sealed (jsonb would rewrite numbers such as
    -- -0.0 and reject \u0000), so the stored event always re-hashes.
    data            json NOT NULL,
    -- Whole seconds, UTC (NewAuditEvent::seal truncates).
    ts              timestamptz NOT NULL,
    prev            text NOT NULL CHECK (prev ~ '^[0-9a-f]{64}$'),
    hash            text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (tenant, seq)
);

-- The head of each tenant's chain: the writers' per-tenant lock and the anchor that
-- lets `verify` detect a truncated tail.
CREATE TABLE mc_audit_heads (
    tenant  text COLLATE "C" PRIMARY KEY,
    seq     bigint NOT NULL CHECK (seq >= 0),
    hash    text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

CREATE FUNCTION mc_audit_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mc_audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'MCA01';
END
$$;

CREATE TRIGGER mc_audit_events_append_only
    BEFORE UPDATE OR DELETE ON mc_audit_events
    FOR EACH ROW EXECUTE FUNCTION mc_audit_reject_change();

CREATE TRIGGER mc_audit_events_no_truncate
    BEFORE TRUNCATE ON mc_audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION mc_audit_reject_change();

CREATE FUNCTION mc_audit_check_link() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    expected text;
BEGIN
    IF NEW.seq = 1 THEN
        expected := repeat('0', 64);
    ELSE
        SELECT e.hash INTO expected FROM mc_audit_events e
         WHERE e.tenant = NEW.tenant AND e.seq = NEW.seq - 1;
    END IF;
    IF expected IS DISTINCT FROM NEW.prev THEN
        RAISE EXCEPTION 'audit event % of tenant % does not link to its predecessor',
            NEW.seq, NEW.tenant USING ERRCODE = 'MCA02';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mc_audit_events_linked
    BEFORE INSERT ON mc_audit_events
    FOR EACH ROW EXECUTE FUNCTION mc_audit_check_link();

CREATE FUNCTION mc_audit_head_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A chain starts empty; it only grows through appends.
        IF NEW.seq <> 0 OR NEW.hash <> repeat('0', 64) THEN
            RAISE EXCEPTION 'a new audit chain head of tenant % must be empty', NEW.tenant
                USING ERRCODE = 'MCA03';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'mc_audit_heads rows cannot be removed (%)', TG_OP
            USING ERRCODE = 'MCA03';
    END IF;
    IF NEW.tenant <> OLD.tenant OR NEW.seq < OLD.seq THEN
        RAISE EXCEPTION 'the audit chain head of tenant % cannot move backwards', OLD.tenant
            USING ERRCODE = 'MCA03';
    END IF;
    IF NEW.seq > OLD.seq AND NOT EXISTS (
        SELECT 1 FROM mc_audit_events e
         WHERE e.tenant = NEW.tenant AND e.seq = NEW.seq AND e.hash = NEW.hash) THEN
        RAISE EXCEPTION 'the audit chain head of tenant % must name a stored event', NEW.tenant
            USING ERRCODE = 'MCA03';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mc_audit_heads_guard
    BEFORE INSERT OR UPDATE OR DELETE ON mc_audit_heads
    FOR EACH ROW EXECUTE FUNCTION mc_audit_head_guard();

CREATE TRIGGER mc_audit_heads_no_truncate
    BEFORE TRUNCATE ON mc_audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION mc_audit_head_guard();
