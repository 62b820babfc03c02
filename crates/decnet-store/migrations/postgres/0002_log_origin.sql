-- Issue 8: who vouches for a log row's decky and service. Rows written before this
-- migration came from the local collector. Keep in step with ../sqlite.
ALTER TABLE logs ADD COLUMN origin TEXT COLLATE "C" NOT NULL DEFAULT 'local'
    CHECK (origin IN ('local', 'forwarded', 'imported'));
