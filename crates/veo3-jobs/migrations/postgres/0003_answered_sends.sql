-- The account limiter counts each send's window from its *answer* (crates/veo3-jobs/src/pace.rs
-- states the rule for both backends). kie counts a request when it arrives, at some moment
-- between our send and its answer; a send made `window` after the answer of the `max`-th
-- latest one therefore arrives at least `window` after it, however late either was. Counting
-- from the reservation (0002) assumed each request arrived at its reserved time, and a loaded
-- machine's late sends were answered 429.
DROP FUNCTION veo3_reserve_submit(TEXT, INT, BIGINT);
DROP TABLE veo3_limits;

-- One row per account (a fingerprint of its API key, never the key): the lock every
-- reservation of the account queues on.
CREATE TABLE veo3_limits (
    account TEXT PRIMARY KEY
);

-- The account's latest sends (at most `max` + 1 are kept): when each was reserved to go, by
-- which worker, and when its answer was journaled (NULL while it is in flight), in
-- microseconds of the server's clock.
CREATE TABLE veo3_sends (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account TEXT NOT NULL,
    worker_id BIGINT NOT NULL,
    slot_us BIGINT NOT NULL,
    answered_us BIGINT
);
CREATE INDEX veo3_sends_by_account ON veo3_sends (account, id);

-- Reserves the next send of `p_account` for worker `p_worker` under "at most `p_max` per
-- `p_window_us`". Returns the reservation's id and how many microseconds to wait before
-- sending, or NULLs when the `p_max`-th latest send has no answer yet (ask again shortly).
-- A send with no answer whose worker's lease has expired counts as answered when the lease
-- ended: a dead worker sends nothing more. One call, one row lock per account.
CREATE FUNCTION veo3_reserve_submit(
    p_worker BIGINT, p_account TEXT, p_max INT, p_window_us BIGINT,
    OUT reservation BIGINT, OUT wait_us BIGINT
) LANGUAGE plpgsql AS $$
DECLARE
    now_us BIGINT;
    slot BIGINT;
    last_slot BIGINT;
    oldest_id BIGINT;
    oldest_worker BIGINT;
    answered BIGINT;
    lease TIMESTAMPTZ;
BEGIN
    INSERT INTO veo3_limits (account) VALUES (p_account) ON CONFLICT (account) DO NOTHING;
    PERFORM 1 FROM veo3_limits l WHERE l.account = p_account FOR UPDATE;
    -- Read after the lock: the time the reservation is made, not when it started waiting.
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    SELECT max(s.slot_us) INTO last_slot FROM veo3_sends s WHERE s.account = p_account;
    slot := GREATEST(now_us, coalesce(last_slot, now_us));
    SELECT s.id, s.worker_id, s.answered_us INTO oldest_id, oldest_worker, answered
        FROM veo3_sends s WHERE s.account = p_account
        ORDER BY s.id DESC OFFSET p_max - 1 LIMIT 1;
    IF oldest_id IS NOT NULL THEN
        IF answered IS NULL THEN
            SELECT w.lease_until INTO lease FROM veo3_workers w WHERE w.id = oldest_worker;
            IF lease IS NULL THEN
                answered := now_us;
            ELSIF lease < clock_timestamp() THEN
                answered := (extract(epoch FROM lease) * 1000000)::BIGINT;
            ELSE
                reservation := NULL;
                wait_us := NULL;
                RETURN;
            END IF;
        END IF;
        -- 1 ms past the window: kie's window may include its edge.
        slot := GREATEST(slot, answered + p_window_us + 1000);
        DELETE FROM veo3_sends s WHERE s.account = p_account AND s.id < oldest_id;
    END IF;
    INSERT INTO veo3_sends (account, worker_id, slot_us) VALUES (p_account, p_worker, slot)
        RETURNING id INTO reservation;
    wait_us := slot - now_us;
END
$$;

-- Journals the answer of reserved send `p_reservation` (any answer, an error included: the
-- request is no longer in flight).
CREATE FUNCTION veo3_submit_answered(p_reservation BIGINT) RETURNS VOID LANGUAGE sql AS $$
    UPDATE veo3_sends SET answered_us = (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
    WHERE id = p_reservation AND answered_us IS NULL;
$$;
