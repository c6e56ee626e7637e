"""Schema migrations, in order. Never edit a released one: append a new one.

``PRAGMA user_version`` holds how many have been applied; an upgrade runs the rest at start.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        starts_at TEXT, ends_at TEXT,
        user_identity_id TEXT,
        display_name TEXT NOT NULL DEFAULT '',
        space_ids TEXT NOT NULL, entrance_ids TEXT NOT NULL, device_ids TEXT NOT NULL,
        problem TEXT,
        revoked_at TEXT
    );
    CREATE TABLE methods (
        method_id TEXT PRIMARY KEY,
        grant_id TEXT,
        mode TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        secret_ct BLOB,
        secret_index BLOB,
        problem TEXT,
        revoked_at TEXT
    );
    CREATE INDEX methods_by_secret ON methods(secret_index);
    CREATE INDEX methods_by_grant ON methods(grant_id);

    CREATE TABLE cloud_objects (
        object_type TEXT NOT NULL, object_id TEXT NOT NULL, raw TEXT NOT NULL,
        PRIMARY KEY (object_type, object_id)
    );
    CREATE TABLE entrances (acs_entrance_id TEXT PRIMARY KEY, space_ids TEXT NOT NULL);
    CREATE TABLE sync_issues (
        object_type TEXT NOT NULL, object_id TEXT NOT NULL, problem TEXT NOT NULL,
        seen_at TEXT NOT NULL, PRIMARY KEY (object_type, object_id)
    );
    CREATE TABLE cloud_events_seen (event_id TEXT PRIMARY KEY, occurred_at TEXT NOT NULL);

    CREATE TABLE lock_credentials (
        lock_id TEXT NOT NULL,
        method_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('scheduled', 'pending', 'applied', 'removing', 'failed')),
        tag BLOB,
        error_code TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (lock_id, method_id)
    );
    CREATE INDEX lock_credentials_by_method ON lock_credentials(method_id);
    CREATE TABLE lock_cursors (lock_id TEXT PRIMARY KEY, event_seq INTEGER NOT NULL);

    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        occurred_at TEXT NOT NULL,
        lock_id TEXT,
        payload TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_undelivered ON outbox(seq) WHERE delivered_at IS NULL;

    CREATE TABLE lockouts (
        lock_id TEXT PRIMARY KEY,
        failures TEXT NOT NULL,
        locked_until TEXT,
        level INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE keystore (name TEXT PRIMARY KEY, value_ct BLOB NOT NULL)
    """,
    # 2: the lock map, as configured at the last start
    """
    CREATE TABLE locks (
        lock_id TEXT PRIMARY KEY,
        driver_type TEXT NOT NULL,
        space_ids TEXT NOT NULL, entrance_ids TEXT NOT NULL, device_ids TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # 3: lockouts per (lock or the whole site, credential kind), failures naming who failed
    """
    CREATE TABLE lockout_buckets (
        scope TEXT NOT NULL,
        kind TEXT NOT NULL,
        failures TEXT NOT NULL,
        locked_until TEXT,
        level INTEGER NOT NULL DEFAULT 0,
        level_at TEXT,
        PRIMARY KEY (scope, kind)
    );
    INSERT INTO lockout_buckets (scope, kind, failures, locked_until, level, level_at)
        SELECT lock_id, 'code', '[]', locked_until, level, locked_until FROM lockouts;
    DROP TABLE lockouts
    """,
    # 4: mobile-key challenges that already passed (a restart must not forget them)
    """
    CREATE TABLE mobile_key_challenges (
        method_id TEXT NOT NULL,
        challenge BLOB NOT NULL,
        PRIMARY KEY (method_id, challenge)
    )
    """,
    # 5: Seam's own states of grants and methods, why something was revoked, and the
    # 'shared' sync state (a code on the lock through the slot of the same user's other grant)
    """
    ALTER TABLE grants ADD COLUMN revoked_reason TEXT;
    ALTER TABLE grants ADD COLUMN seam_notes TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE methods ADD COLUMN revoked_reason TEXT;
    ALTER TABLE methods ADD COLUMN issued INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE methods ADD COLUMN seam_notes TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE lock_credentials_v5 (
        lock_id TEXT NOT NULL,
        method_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('scheduled', 'pending', 'applied', 'removing', 'failed', 'shared')),
        tag BLOB,
        error_code TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (lock_id, method_id)
    );
    INSERT INTO lock_credentials_v5 SELECT * FROM lock_credentials;
    DROP TABLE lock_credentials;
    ALTER TABLE lock_credentials_v5 RENAME TO lock_credentials;
    CREATE INDEX lock_credentials_by_method ON lock_credentials(method_id)
    """,
    # 6: which log each lock's cursor counts in (gateway/store/lock_logs.py): the origin the
    # driver declared (NULL: not known yet, as for every cursor kept before), the log's epoch
    # in the event ids (0: the ids as they were, <lock>:<seq>), and whether the gateway forgot
    # the lock (removed, or dropped from the config) since it last read it: so are the locks
    # already gone from the lock map, whose link keys went with them
    """
    ALTER TABLE lock_cursors ADD COLUMN origin TEXT;
    ALTER TABLE lock_cursors ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE lock_cursors ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;
    UPDATE lock_cursors SET forgotten = 1 WHERE lock_id NOT IN (SELECT lock_id FROM locks)
    """,
]
