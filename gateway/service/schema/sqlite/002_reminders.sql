-- Service reminders (gateway/service/reminders.c owns these tables).

-- One row per reminder action: a vehicle's item reached a stage ('first',
-- 'second', 'overdue') in one service cycle (cycle_day: the day the item
-- was last done, -1 never). The UNIQUE key is the idempotency guard: the
-- run that inserts the row (INSERT ... ON CONFLICT DO NOTHING RETURNING)
-- is the one that sends the offer and opens the task; a second run, or a
-- second instance, gets no row back and does nothing.
CREATE TABLE service_reminders (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  item TEXT NOT NULL,
  cycle_day INTEGER NOT NULL,
  stage TEXT NOT NULL,
  due_day INTEGER NOT NULL,    -- the predicted due day when it was created
  created_ms INTEGER NOT NULL,
  offer_id TEXT,               -- the offer sent (offers.id)
  task_id INTEGER,             -- the task opened (tasks.id)
  UNIQUE (vin, item, cycle_day, stage)
);

-- The CRM team's task list (minimal: the retention work will grow it).
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  kind TEXT NOT NULL,          -- 'service_call': call the customer to book
  item TEXT NOT NULL,
  stage TEXT NOT NULL,
  due_day INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'open'
);
CREATE INDEX tasks_state ON tasks(state, id);
