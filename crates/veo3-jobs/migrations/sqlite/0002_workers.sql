-- Workers, their leases, fencing tokens and the account limiter: several processes sharing one
-- journal file, as the PostgreSQL journal's workers do (crates/veo3-jobs/src/worker.rs).
--
-- A worker holds a lease (`lease_until_ms`, Unix milliseconds of the machine's clock, which
-- every process on it shares) that it renews while it works. A job it claimed names it in
-- `worker_id`; the job goes to whoever claims it next once the lease has expired. `fence` is
-- bumped by every claim and takeover: a worker whose claim was taken sends nothing for it.
-- `host`, `pid` and `pid_start` let a worker on the same machine tell that another one's
-- process is gone, so a crash is taken over at once instead of a lease later.
CREATE TABLE veo3_workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    pid_start INTEGER,
    started_ms INTEGER NOT NULL,
    lease_ms INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL
);

ALTER TABLE jobs ADD COLUMN worker_id INTEGER;
ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN extra_of INTEGER;
CREATE INDEX jobs_by_worker ON jobs (worker_id);

-- The account's latest sends (a fingerprint of its key, never the key): when each was
-- reserved to go, by which worker, and when its answer was journaled (NULL while in flight),
-- in microseconds. The rule is crates/veo3-jobs/src/pace.rs's.
CREATE TABLE veo3_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    worker_id INTEGER NOT NULL,
    slot_us INTEGER NOT NULL,
    answered_us INTEGER
);
CREATE INDEX veo3_sends_by_account ON veo3_sends (account, id);

-- Values made once per journal: `salt`, which account fingerprints are keyed with.
CREATE TABLE veo3_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
