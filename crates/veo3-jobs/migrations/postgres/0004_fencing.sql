-- Fencing tokens, extra tasks, dead-process detection and a keyed account fingerprint
-- (the same contract as the SQLite journal's 0002_workers.sql).
--
-- `fence` is bumped by every claim and takeover: a worker whose claim was taken sends
-- nothing for it. `extra_of` marks a second task billed for one job (a late answer for a job
-- already sent again elsewhere), kept and downloaded rather than lost. A worker's `lease_ms`
-- is its grace: its submits without an answer become unknown only a lease after its lease
-- ended. `host`, `pid` and `pid_start` let a worker on the same machine tell that another
-- one's process is gone.
ALTER TABLE jobs ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN extra_of BIGINT;
ALTER TABLE veo3_workers ADD COLUMN lease_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE veo3_workers ADD COLUMN host TEXT;
ALTER TABLE veo3_workers ADD COLUMN pid BIGINT;
ALTER TABLE veo3_workers ADD COLUMN pid_start BIGINT;

-- Values made once per journal: `salt`, which account fingerprints are keyed with.
CREATE TABLE veo3_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
