-- Batches and their jobs. A job's state is `state` (its name, indexed) plus `detail`, the
-- whole state as JSON; `task_id` is copied out so a callback's task can be found.
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    settings TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER REFERENCES batches(id),
    name TEXT NOT NULL,
    line INTEGER,
    request TEXT NOT NULL,
    upgrade TEXT,
    cost INTEGER NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    detail TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    submitted_ms INTEGER,
    finished_ms INTEGER
);

CREATE INDEX jobs_by_batch_state ON jobs (batch_id, state);
CREATE INDEX jobs_by_task ON jobs (task_id);
