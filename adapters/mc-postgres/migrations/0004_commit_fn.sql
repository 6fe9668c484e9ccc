-- The unit of work as one statement (ADR 0304).
--
-- `mc_commit` does exactly what the adapter's multi-statement transaction does, in the
-- same order, so a commit costs one round trip instead of ~6:
--
--   1. idempotency claim first (INSERT … ON CONFLICT DO NOTHING; a concurrent writer of
--      the same key is waited for; a recorded key is returned to the caller, which
--      answers Replayed / IdempotencyConflict from it, and nothing else is written);
--   2. the transition, under optimistic concurrency and the legal-transition check;
--   3. the created execution;
--   4. the audit events, already sealed by the caller (SHA-256 over mc-core's canonical
--      JSON stays in Rust) onto the chain head it believes current. The head row is
--      locked and compared first; a stale belief fails with MCC05 and the real head in
--      DETAIL, so the caller re-seals and calls again. The link trigger (MCA02), the
--      primary key and the head guard (MCA03) still check every row.
--
-- Called as a single statement, it runs in its own implicit transaction: any error
-- rolls back everything it wrote, the idempotency claim included. Typed failures:
--   MCC01 transition target not found          MCC02 version conflict (DETAIL: actual)
--   MCC03 illegal transition (DETAIL: state)   MCC04 created execution already exists
--   MCC05 stale chain head (DETAIL: "seq hash")
--   40001 lost a race that a re-run resolves (the caller retries, as before).
-- The caller validates tenants of the created execution and events beforehand.

CREATE FUNCTION mc_commit(
    p_tenant          text,
    -- idempotency record; p_key NULL when the unit carries none
    p_key             text,
    p_fingerprint     text,
    p_outcome         text,
    p_key_at          timestamptz,
    p_key_sub_ns      smallint,
    -- transition; p_tr_id NULL when none
    p_tr_id           text,
    p_tr_to           text,
    p_tr_attempt_inc  bigint,
    p_tr_expected     bigint,
    p_tr_legal_from   text[],
    p_at              timestamptz,
    p_at_sub_ns       smallint,
    -- created execution (of p_tenant); p_new_id NULL when none
    p_new_id          text,
    p_new_state       text,
    p_new_attempt     bigint,
    p_new_manifest    text,
    p_new_inputs      text,
    p_new_parent      text,
    p_new_root        text,
    p_new_labels      jsonb,
    p_new_version     bigint,
    p_new_created_at  timestamptz,
    p_new_created_sub smallint,
    p_new_updated_at  timestamptz,
    p_new_updated_sub smallint,
    -- audit events sealed onto the head (p_head_seq, p_head_hash); empty arrays: none
    p_head_seq        bigint,
    p_head_hash       text,
    p_seqs            bigint[],
    p_ids             text[],
    p_kinds           text[],
    p_subs            text[],
    p_execs           text[],
    p_resources       text[],
    p_datas           text[],
    p_tss             timestamptz[],
    p_prevs           text[],
    p_hashes          text[]
)
RETURNS TABLE (
    o_kind           text,
    o_fingerprint    text,
    o_outcome        text,
    o_tenant         text,
    o_id             text,
    o_state          text,
    o_attempt        bigint,
    o_manifest       text,
    o_inputs         text,
    o_parent         text,
    o_root           text,
    o_labels         jsonb,
    o_version        bigint,
    o_created_at     timestamptz,
    o_created_sub_ns smallint,
    o_updated_at     timestamptz,
    o_updated_sub_ns smallint
)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    n           bigint;
    r           mc_executions%ROWTYPE;
    cur_version bigint;
    cur_state   text;
    h_seq       bigint;
    h_hash      text;
    last        integer;
BEGIN
    -- 1. Idempotency first: a repeat writes nothing.
    IF p_key IS NOT NULL THEN
        INSERT INTO mc_idempotency AS i (tenant, key, fingerprint, outcome, created_at, created_sub_ns)
        VALUES (p_tenant, p_key, p_fingerprint, p_outcome::json, p_key_at, p_key_sub_ns)
        ON CONFLICT (tenant, key) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            -- The conflicting record is committed (the insert waited for its writer);
            -- this statement's fresh snapshot sees it.
            SELECT i.fingerprint, i.outcome::text INTO o_fingerprint, o_outcome
              FROM mc_idempotency i WHERE i.tenant = p_tenant AND i.key = p_key;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'idempotency key % vanished between insert and read', p_key
                    USING ERRCODE = '40001';
            END IF;
            o_kind := 'replayed';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    -- 2. Transition with optimistic concurrency.
    IF p_tr_id IS NOT NULL THEN
        UPDATE mc_executions e
           SET state = p_tr_to, version = e.version + 1, attempt = e.attempt + p_tr_attempt_inc,
               updated_at = p_at, updated_sub_ns = p_at_sub_ns
         WHERE e.tenant = p_tenant AND e.id = p_tr_id AND e.version = p_tr_expected
           AND e.state = ANY (p_tr_legal_from)
        RETURNING e.* INTO r;
        IF NOT FOUND THEN
            -- Name the reason from the latest committed row (fresh snapshot).
            SELECT e.version, e.state INTO cur_version, cur_state
              FROM mc_executions e WHERE e.tenant = p_tenant AND e.id = p_tr_id;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'execution % not found', p_tr_id USING ERRCODE = 'MCC01';
            END IF;
            IF cur_version <> p_tr_expected THEN
                RAISE EXCEPTION 'execution % is at version %', p_tr_id, cur_version
                    USING ERRCODE = 'MCC02', DETAIL = cur_version::text;
            END IF;
            IF NOT (cur_state = ANY (p_tr_legal_from)) THEN
                RAISE EXCEPTION 'execution % cannot go from % to %', p_tr_id, cur_state, p_tr_to
                    USING ERRCODE = 'MCC03', DETAIL = cur_state;
            END IF;
            RAISE EXCEPTION 'execution % changed while being updated', p_tr_id
                USING ERRCODE = '40001';
        END IF;
        o_tenant := r.tenant; o_id := r.id; o_state := r.state; o_attempt := r.attempt;
        o_manifest := r.manifest_digest; o_inputs := r.inputs_digest; o_parent := r.parent;
        o_root := r.root; o_labels := r.labels; o_version := r.version;
        o_created_at := r.created_at; o_created_sub_ns := r.created_sub_ns;
        o_updated_at := r.updated_at; o_updated_sub_ns := r.updated_sub_ns;
    END IF;

    -- 3. Create.
    IF p_new_id IS NOT NULL THEN
        INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest, inputs_digest,
               parent, root, labels, version, created_at, created_sub_ns, updated_at, updated_sub_ns)
        VALUES (p_tenant, p_new_id, p_new_state, p_new_attempt, p_new_manifest, p_new_inputs,
               p_new_parent, p_new_root, p_new_labels, p_new_version, p_new_created_at,
               p_new_created_sub, p_new_updated_at, p_new_updated_sub)
        ON CONFLICT (tenant, id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RAISE EXCEPTION 'execution % already exists', p_new_id USING ERRCODE = 'MCC04';
        END IF;
    END IF;

    -- 4. Audit: lock the tenant's head, check the caller sealed onto it, append, move it.
    last := coalesce(cardinality(p_seqs), 0);
    IF last > 0 THEN
        INSERT INTO mc_audit_heads AS h (tenant, seq, hash) VALUES (p_tenant, 0, repeat('0', 64))
        ON CONFLICT (tenant) DO UPDATE SET seq = h.seq
        RETURNING h.seq, h.hash INTO h_seq, h_hash;
        IF h_seq <> p_head_seq OR h_hash <> p_head_hash THEN
            RAISE EXCEPTION 'audit events of tenant % were sealed onto a stale chain head', p_tenant
                USING ERRCODE = 'MCC05', DETAIL = h_seq::text || ' ' || h_hash;
        END IF;
        -- ORDER BY seq: each row's link trigger must see its predecessor inserted.
        INSERT INTO mc_audit_events
               (tenant, seq, id, kind, actor_sub, execution_id, resource, data, ts, prev, hash)
        SELECT p_tenant, u.seq, u.id, u.kind, u.sub, u.exec, u.res, u.data::json, u.ts, u.prev, u.hash
          FROM unnest(p_seqs, p_ids, p_kinds, p_subs, p_execs, p_resources, p_datas, p_tss,
                      p_prevs, p_hashes)
               AS u(seq, id, kind, sub, exec, res, data, ts, prev, hash)
         ORDER BY u.seq;
        UPDATE mc_audit_heads h SET seq = p_seqs[last], hash = p_hashes[last]
         WHERE h.tenant = p_tenant;
    END IF;

    o_kind := 'committed';
    RETURN NEXT;
END
$$;
