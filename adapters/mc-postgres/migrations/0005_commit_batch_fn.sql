-- Group commit (ADR 0305): several units of work in one statement, one transaction,
-- one WAL flush. Replaces the one-unit `mc_commit` of migration 0004.
--
-- `mc_commit_batch` runs the units in order. Each unit runs in its own subtransaction
-- (a PL/pgSQL block with an EXCEPTION clause), exactly as `mc_commit` ran it:
--
--   1. idempotency claim first (INSERT … ON CONFLICT DO NOTHING; a concurrent writer
--      of the same key is waited for; a recorded key is returned to the caller, which
--      answers Replayed / IdempotencyConflict from it, and nothing else is written);
--   2. the transition: the row is found and locked by its primary key alone
--      (`SELECT … FOR UPDATE`, which waits for a concurrent writer and returns the
--      latest version), its version and state are checked here, then it is updated by
--      key. (0004 put `state = ANY (…)` in the UPDATE's WHERE; the generic plan that
--      PL/pgSQL caches after five calls then picked the (tenant, state, created_at)
--      index and walked every running execution of the tenant to find one id — the
--      top of the server's profile, growing with the tenant.)
--   3. the created execution;
--   4. the audit events, already sealed by the caller (SHA-256 over mc-core's
--      canonical JSON stays in Rust) onto the chain head it predicts. The head rows
--      of all the batch's tenants that carry events are locked first, in one
--      statement and one order, and stay locked to the end of the transaction; each
--      unit's prediction is compared with the head as left by the units before it;
--      the heads are written once, after the last unit. The link trigger (MCA02), the
--      primary key and the head guard (MCA03) still check every row.
--
-- A unit that fails rolls back alone — its claim, transition, creation and events —
-- and the units before and after it are unaffected: every unit is still
-- all-or-nothing (DESIGN rule 2); what the units of one call share is the commit.
-- Typed failures (SQLSTATE, DETAIL) are those of 0004:
--   MCC01 transition target not found          MCC02 version conflict (DETAIL: actual)
--   MCC03 illegal transition (DETAIL: state)   MCC04 created execution already exists
--   MCC05 stale chain head (DETAIL: "seq hash")
--
-- Parameters are parallel arrays with one element per unit (NULL where that unit has
-- no such part); `p_legal_from[i]` is unit i's list of legal source states joined
-- with ','; `p_ev_count[i]` says how many of the flattened event arrays belong to
-- unit i (events of unit 1 first). The caller sorts units by tenant (stably), so a
-- tenant's units are contiguous and two batches lock chain heads in the same order.
-- The caller validates the tenants of created executions and events beforehand.
--
-- One row per unit comes back, `o_idx` = its position (1-based), `o_path` = 'set'
-- (the fast path: every unit committed, written with one statement per kind of
-- write) or 'unit' (run one by one, each in its own subtransaction): `o_kind` is
-- 'committed', 'replayed', 'failed' (with the error's SQLSTATE, message, DETAIL and
-- constraint name) or 'deferred'. A unit that fails in a way that sending it again
-- resolves — MCC05 (its events were sealed onto a stale head: another replica moved
-- the chain, or an earlier unit of the batch that was predicted to move it did not
-- commit), 40001 / 40P01 (a lost race) — is sent again by the caller in its next
-- batch, so every later unit of the same tenant in this batch is 'deferred' (not run)
-- and sent again after it: a tenant's units are applied in their order.

DROP FUNCTION mc_commit;

CREATE FUNCTION mc_commit_batch(
    p_tenant          text[],
    p_key             text[],
    p_fingerprint     text[],
    p_outcome         text[],
    p_key_at          timestamptz[],
    p_key_sub_ns      smallint[],
    p_tr_id           text[],
    p_tr_to           text[],
    p_tr_attempt_inc  bigint[],
    p_tr_expected     bigint[],
    p_legal_from      text[],
    p_at              timestamptz[],
    p_at_sub_ns       smallint[],
    p_new_id          text[],
    p_new_state       text[],
    p_new_attempt     bigint[],
    p_new_manifest    text[],
    p_new_inputs      text[],
    p_new_parent      text[],
    p_new_root        text[],
    p_new_labels      text[],
    p_new_version     bigint[],
    p_new_created_at  timestamptz[],
    p_new_created_sub smallint[],
    p_new_updated_at  timestamptz[],
    p_new_updated_sub smallint[],
    p_head_seq        bigint[],
    p_head_hash       text[],
    p_ev_count        integer[],
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
    o_idx            integer,
    o_kind           text,
    o_path           text,
    o_sqlstate       text,
    o_message        text,
    o_detail         text,
    o_constraint     text,
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
    n           integer := coalesce(cardinality(p_tenant), 0);
    total       integer := coalesce(cardinality(p_seqs), 0);
    ev_from     integer := 0;
    ev_to       integer;
    cnt         bigint;
    r           mc_executions%ROWTYPE;
    cur_version bigint;
    cur_state   text;
    blocked     text[] := '{}';
    -- The chain heads of the batch's tenants that carry events, locked up front: as
    -- the units committed so far leave them, and whether they moved.
    l_tenants   text[];
    l_seqs      bigint[];
    l_hashes    text[];
    l_moved     boolean[];
    k           integer;
    -- The fast path's view of the heads (kept only if it succeeds), and each event's
    -- tenant.
    f_seqs      bigint[];
    f_hashes    text[];
    f_moved     boolean[];
    ev_tenant   text[];
    fast        boolean := false;
    want        integer;
BEGIN
    FOR i IN 1 .. n LOOP
        cnt := coalesce(cnt, 0) + coalesce(p_ev_count[i], 0);
    END LOOP;
    IF coalesce(cnt, 0) <> total THEN
        RAISE EXCEPTION 'mc_commit_batch: % events but their counts add up to %', total, cnt
            USING ERRCODE = '22023';
    END IF;
    -- Lock the chain head of every tenant whose units carry events, in one statement
    -- and in one order (tenant, byte-wise) for every batch; the locks are held to the
    -- end of the transaction. `SELECT … FOR UPDATE` fires no trigger. A tenant's
    -- first events find no head: it is created empty (the guard trigger checks it),
    -- then locked like the others.
    FOR attempt IN 1 .. 2 LOOP
        SELECT array_agg(l.tenant), array_agg(l.seq), array_agg(l.hash), array_agg(false)
          INTO l_tenants, l_seqs, l_hashes, l_moved
          FROM (SELECT h.tenant, h.seq, h.hash
                  FROM mc_audit_heads h
                 WHERE h.tenant = ANY (ARRAY(SELECT p_tenant[j]
                                              FROM generate_subscripts(p_tenant, 1) AS j
                                             WHERE p_ev_count[j] > 0))
                 ORDER BY h.tenant COLLATE "C"
                   FOR UPDATE) AS l;
        EXIT WHEN attempt = 2 OR NOT EXISTS (
            SELECT 1 FROM generate_subscripts(p_tenant, 1) AS j
             WHERE p_ev_count[j] > 0
               AND array_position(l_tenants, p_tenant[j]) IS NULL);
        INSERT INTO mc_audit_heads (tenant, seq, hash)
        SELECT DISTINCT p_tenant[j], 0, repeat('0', 64)
          FROM generate_subscripts(p_tenant, 1) AS j
         WHERE p_ev_count[j] > 0 AND array_position(l_tenants, p_tenant[j]) IS NULL
        ON CONFLICT (tenant) DO NOTHING;
    END LOOP;

    -- Fast path: when every unit commits — the common case — the batch is written
    -- with one statement per kind of write instead of four per unit. Any sign that
    -- some unit would not commit as-is (a recorded key, a version or state that does
    -- not match, an existing id, a stale head, any error) rolls the fast path back to
    -- its savepoint and the units are run one by one below, each with its own typed
    -- outcome. Both paths take locks in the same order: heads, keys, executions.
    IF n > 0 THEN
        BEGIN
            f_seqs := l_seqs;
            f_hashes := l_hashes;
            f_moved := l_moved;
            ev_tenant := '{}';
            -- Heads: each tenant's units must be sealed one onto the other, the first
            -- onto the locked head.
            FOR i IN 1 .. n LOOP
                ev_to := ev_from + p_ev_count[i];
                IF p_ev_count[i] > 0 THEN
                    k := array_position(l_tenants, p_tenant[i]);
                    IF f_seqs[k] <> p_head_seq[i] OR f_hashes[k] <> p_head_hash[i] THEN
                        RAISE EXCEPTION 'stale head' USING ERRCODE = 'MCC00';
                    END IF;
                    f_seqs[k] := p_seqs[ev_to];
                    f_hashes[k] := p_hashes[ev_to];
                    f_moved[k] := true;
                    ev_tenant := ev_tenant || array_fill(p_tenant[i], ARRAY[p_ev_count[i]]);
                END IF;
                ev_from := ev_to;
            END LOOP;
            ev_from := 0;

            -- 1. Claims: every key must be new (ON CONFLICT DO NOTHING also skips a
            --    key repeated within the batch).
            want := cardinality(array_remove(p_key, NULL));
            IF want > 0 THEN
            INSERT INTO mc_idempotency AS ik
                   (tenant, key, fingerprint, outcome, created_at, created_sub_ns)
            SELECT p_tenant[u.i], p_key[u.i], p_fingerprint[u.i], p_outcome[u.i]::json,
                   p_key_at[u.i], p_key_sub_ns[u.i]
              FROM unnest(p_key) WITH ORDINALITY AS u(key, i)
             WHERE u.key IS NOT NULL
            ON CONFLICT (tenant, key) DO NOTHING;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            IF cnt <> want THEN
                RAISE EXCEPTION 'a key is recorded' USING ERRCODE = 'MCC00';
            END IF;
            END IF;

            -- 2. Transitions: by primary key; `(… = ANY (…)) IS TRUE` keeps the state
            --    check out of the index conditions (see step 2 of the loop below).
            --    An execution named twice is updated once: the count tells.
            want := cardinality(array_remove(p_tr_id, NULL));
            IF want > 0 THEN
            UPDATE mc_executions e
               SET state = p_tr_to[u.i], version = e.version + 1,
                   attempt = e.attempt + p_tr_attempt_inc[u.i],
                   updated_at = p_at[u.i], updated_sub_ns = p_at_sub_ns[u.i]
              FROM unnest(p_tr_id) WITH ORDINALITY AS u(id, i)
             WHERE u.id IS NOT NULL AND e.tenant = p_tenant[u.i] AND e.id = u.id
               AND e.version = p_tr_expected[u.i]
               AND (e.state = ANY (string_to_array(p_legal_from[u.i], ','))) IS TRUE;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            IF cnt <> want THEN
                RAISE EXCEPTION 'a transition does not apply' USING ERRCODE = 'MCC00';
            END IF;
            END IF;

            -- 3. Creates.
            want := cardinality(array_remove(p_new_id, NULL));
            IF want > 0 THEN
            INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest,
                   inputs_digest, parent, root, labels, version, created_at,
                   created_sub_ns, updated_at, updated_sub_ns)
            SELECT p_tenant[u.i], u.id, p_new_state[u.i], p_new_attempt[u.i],
                   p_new_manifest[u.i], p_new_inputs[u.i], p_new_parent[u.i],
                   p_new_root[u.i], p_new_labels[u.i]::jsonb, p_new_version[u.i],
                   p_new_created_at[u.i], p_new_created_sub[u.i], p_new_updated_at[u.i],
                   p_new_updated_sub[u.i]
              FROM unnest(p_new_id) WITH ORDINALITY AS u(id, i)
             WHERE u.id IS NOT NULL
            ON CONFLICT (tenant, id) DO NOTHING;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            IF cnt <> want THEN
                RAISE EXCEPTION 'an execution exists' USING ERRCODE = 'MCC00';
            END IF;
            END IF;

            -- 4. Events, in chain order per tenant (each row's link trigger must see
            --    its predecessor).
            IF total > 0 THEN
            INSERT INTO mc_audit_events
                   (tenant, seq, id, kind, actor_sub, execution_id, resource, data, ts,
                    prev, hash)
            SELECT u.tenant, u.seq, u.id, u.kind, u.sub, u.exec, u.res, u.data::json,
                   u.ts, u.prev, u.hash
              FROM unnest(ev_tenant, p_seqs, p_ids, p_kinds, p_subs, p_execs,
                          p_resources, p_datas, p_tss, p_prevs, p_hashes)
                   AS u(tenant, seq, id, kind, sub, exec, res, data, ts, prev, hash)
             ORDER BY u.tenant, u.seq;
            END IF;
            fast := true;
        EXCEPTION WHEN OTHERS THEN
            fast := false;
            ev_from := 0;
        END;
    END IF;
    IF fast THEN
        l_seqs := f_seqs;
        l_hashes := f_hashes;
        l_moved := f_moved;
        RETURN QUERY
        SELECT u.i::integer, 'committed'::text, 'set'::text, NULL::text, NULL::text, NULL::text,
               NULL::text, NULL::text, NULL::text, e.tenant::text, e.id::text, e.state,
               e.attempt, e.manifest_digest, e.inputs_digest, e.parent::text,
               e.root::text, e.labels, e.version, e.created_at, e.created_sub_ns,
               e.updated_at, e.updated_sub_ns
          FROM unnest(p_tr_id) WITH ORDINALITY AS u(id, i)
          LEFT JOIN mc_executions e ON e.tenant = p_tenant[u.i] AND e.id = u.id
         ORDER BY u.i;
        n := 0; -- nothing left for the loop
    END IF;

    FOR i IN 1 .. n LOOP
        ev_to := ev_from + p_ev_count[i];
        o_idx := i;
        o_path := 'unit';
        o_kind := NULL; o_sqlstate := NULL; o_message := NULL; o_detail := NULL;
        o_constraint := NULL; o_fingerprint := NULL; o_outcome := NULL; o_tenant := NULL;
        o_id := NULL; o_state := NULL; o_attempt := NULL; o_manifest := NULL;
        o_inputs := NULL; o_parent := NULL; o_root := NULL; o_labels := NULL;
        o_version := NULL; o_created_at := NULL; o_created_sub_ns := NULL;
        o_updated_at := NULL; o_updated_sub_ns := NULL;
        IF p_tenant[i] = ANY (blocked) THEN
            -- An earlier unit of this tenant is to be sent again: so is this one,
            -- after it, so a tenant's units keep their order.
            o_kind := 'deferred';
            RETURN NEXT;
            ev_from := ev_to;
            CONTINUE;
        END IF;
        BEGIN
            -- 1. Idempotency first: a repeat writes nothing.
            IF p_key[i] IS NOT NULL THEN
                INSERT INTO mc_idempotency AS ik
                       (tenant, key, fingerprint, outcome, created_at, created_sub_ns)
                VALUES (p_tenant[i], p_key[i], p_fingerprint[i], p_outcome[i]::json,
                        p_key_at[i], p_key_sub_ns[i])
                ON CONFLICT (tenant, key) DO NOTHING;
                GET DIAGNOSTICS cnt = ROW_COUNT;
                IF cnt = 0 THEN
                    -- The conflicting record is committed (the insert waited for its
                    -- writer) or claimed earlier in this transaction; either is seen.
                    SELECT ik.fingerprint, ik.outcome::text INTO o_fingerprint, o_outcome
                      FROM mc_idempotency ik
                     WHERE ik.tenant = p_tenant[i] AND ik.key = p_key[i];
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'idempotency key % vanished between insert and read',
                            p_key[i] USING ERRCODE = '40001';
                    END IF;
                    o_kind := 'replayed';
                END IF;
            END IF;

            IF o_kind IS NULL THEN
                -- 2. Transition with optimistic concurrency, by primary key.
                IF p_tr_id[i] IS NOT NULL THEN
                    SELECT e.version, e.state INTO cur_version, cur_state
                      FROM mc_executions e
                     WHERE e.tenant = p_tenant[i] AND e.id = p_tr_id[i]
                       FOR UPDATE;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'execution % not found', p_tr_id[i]
                            USING ERRCODE = 'MCC01';
                    END IF;
                    IF cur_version <> p_tr_expected[i] THEN
                        RAISE EXCEPTION 'execution % is at version %', p_tr_id[i], cur_version
                            USING ERRCODE = 'MCC02', DETAIL = cur_version::text;
                    END IF;
                    IF NOT (cur_state = ANY (string_to_array(p_legal_from[i], ','))) THEN
                        RAISE EXCEPTION 'execution % cannot go from % to %', p_tr_id[i],
                            cur_state, p_tr_to[i]
                            USING ERRCODE = 'MCC03', DETAIL = cur_state;
                    END IF;
                    UPDATE mc_executions e
                       SET state = p_tr_to[i], version = e.version + 1,
                           attempt = e.attempt + p_tr_attempt_inc[i],
                           updated_at = p_at[i], updated_sub_ns = p_at_sub_ns[i]
                     WHERE e.tenant = p_tenant[i] AND e.id = p_tr_id[i]
                    RETURNING e.* INTO r;
                    o_tenant := r.tenant; o_id := r.id; o_state := r.state;
                    o_attempt := r.attempt; o_manifest := r.manifest_digest;
                    o_inputs := r.inputs_digest; o_parent := r.parent; o_root := r.root;
                    o_labels := r.labels; o_version := r.version;
                    o_created_at := r.created_at; o_created_sub_ns := r.created_sub_ns;
                    o_updated_at := r.updated_at; o_updated_sub_ns := r.updated_sub_ns;
                END IF;

                -- 3. Create.
                IF p_new_id[i] IS NOT NULL THEN
                    INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest,
                           inputs_digest, parent, root, labels, version, created_at,
                           created_sub_ns, updated_at, updated_sub_ns)
                    VALUES (p_tenant[i], p_new_id[i], p_new_state[i], p_new_attempt[i],
                           p_new_manifest[i], p_new_inputs[i], p_new_parent[i],
                           p_new_root[i], p_new_labels[i]::jsonb, p_new_version[i],
                           p_new_created_at[i], p_new_created_sub[i], p_new_updated_at[i],
                           p_new_updated_sub[i])
                    ON CONFLICT (tenant, id) DO NOTHING;
                    GET DIAGNOSTICS cnt = ROW_COUNT;
                    IF cnt = 0 THEN
                        RAISE EXCEPTION 'execution % already exists', p_new_id[i]
                            USING ERRCODE = 'MCC04';
                    END IF;
                END IF;

                -- 4. Audit: check the caller sealed onto the head, append.
                IF p_ev_count[i] > 0 THEN
                    k := array_position(l_tenants, p_tenant[i]);
                    IF l_seqs[k] <> p_head_seq[i] OR l_hashes[k] <> p_head_hash[i] THEN
                        RAISE EXCEPTION 'audit events of tenant % were sealed onto a stale chain head',
                            p_tenant[i]
                            USING ERRCODE = 'MCC05', DETAIL = l_seqs[k]::text || ' ' || l_hashes[k];
                    END IF;
                    -- ORDER BY seq: each row's link trigger must see its predecessor.
                    INSERT INTO mc_audit_events
                           (tenant, seq, id, kind, actor_sub, execution_id, resource, data,
                            ts, prev, hash)
                    SELECT p_tenant[i], u.seq, u.id, u.kind, u.sub, u.exec, u.res,
                           u.data::json, u.ts, u.prev, u.hash
                      FROM unnest(p_seqs[ev_from + 1 : ev_to], p_ids[ev_from + 1 : ev_to],
                                  p_kinds[ev_from + 1 : ev_to], p_subs[ev_from + 1 : ev_to],
                                  p_execs[ev_from + 1 : ev_to],
                                  p_resources[ev_from + 1 : ev_to],
                                  p_datas[ev_from + 1 : ev_to], p_tss[ev_from + 1 : ev_to],
                                  p_prevs[ev_from + 1 : ev_to], p_hashes[ev_from + 1 : ev_to])
                           AS u(seq, id, kind, sub, exec, res, data, ts, prev, hash)
                     ORDER BY u.seq;
                END IF;
                o_kind := 'committed';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS o_sqlstate = RETURNED_SQLSTATE,
                                    o_message = MESSAGE_TEXT,
                                    o_detail = PG_EXCEPTION_DETAIL,
                                    o_constraint = CONSTRAINT_NAME;
            o_kind := 'failed';
            o_fingerprint := NULL; o_outcome := NULL; o_tenant := NULL; o_id := NULL;
            o_state := NULL; o_attempt := NULL; o_manifest := NULL; o_inputs := NULL;
            o_parent := NULL; o_root := NULL; o_labels := NULL; o_version := NULL;
            o_created_at := NULL; o_created_sub_ns := NULL; o_updated_at := NULL;
            o_updated_sub_ns := NULL;
            IF o_sqlstate IN ('MCC05', '40001', '40P01') THEN
                blocked := blocked || p_tenant[i];
            END IF;
        END;
        IF o_kind = 'committed' AND p_ev_count[i] > 0 THEN
            l_seqs[k] := p_seqs[ev_to];
            l_hashes[k] := p_hashes[ev_to];
            l_moved[k] := true;
        END IF;
        RETURN NEXT;
        ev_from := ev_to;
    END LOOP;
    -- Move the heads, once per tenant.
    IF true = ANY (l_moved) THEN
    UPDATE mc_audit_heads h SET seq = v.seq, hash = v.hash
      FROM unnest(l_tenants, l_seqs, l_hashes, l_moved) AS v(tenant, seq, hash, moved)
     WHERE v.moved AND h.tenant = v.tenant;
    END IF;
END
$$;
