-- The shard is the last line of defence of the shard map: it knows which slots it owns,
-- since which map version, and refuses a write (and a read) for any other slot, however
-- old the map of the gateway that sent it. Only the admin CLI (`shard-manager init`,
-- `shard-manager map ...`) writes these tables, from the metadata database's map.

-- What this server was told: which shard of the map it is, and at which map version.
-- No row: never told (a shard used without a metadata database), which owns every slot.
CREATE TABLE shardgate_map (
    singleton  BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
    shard      INTEGER     NOT NULL,
    version    BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The slots this shard owns, each with the map version it has owned it since.
CREATE TABLE shardgate_slots (
    slot  INTEGER PRIMARY KEY,
    since BIGINT  NOT NULL
);

-- Writes claim their slots with a shared advisory lock (class 21319, "SG"); a map change
-- takes the same locks exclusively, so it waits for writes in flight, and a write that
-- waited sees the new ownership (each statement of a plpgsql function reads a fresh
-- snapshot). Locks are taken in slot order, so a bulk write and a map change never
-- deadlock. A slot not owned raises SQLSTATE SG001, which the gateway knows: it reloads
-- the map and retries once on the owner.
CREATE FUNCTION shardgate_claim(p_slots INTEGER[]) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    refused INTEGER[];
    told BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(21319, s)
       FROM (SELECT DISTINCT unnest(p_slots) AS s ORDER BY 1) ordered;
    SELECT version INTO told FROM shardgate_map;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    SELECT array_agg(s ORDER BY s) INTO refused
      FROM (SELECT DISTINCT unnest(p_slots) AS s) wanted
     WHERE NOT EXISTS (SELECT 1 FROM shardgate_slots o WHERE o.slot = wanted.s);
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'this shard does not own slot %', array_to_string(refused, ', ')
            USING ERRCODE = 'SG001', DETAIL = told::text;
    END IF;
    RETURN true;
END
$$;

-- One slot, the common case (a single write or delete).
CREATE FUNCTION shardgate_claim(p_slot INTEGER) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    told BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(21319, p_slot);
    SELECT version INTO told FROM shardgate_map;
    IF FOUND AND NOT EXISTS (SELECT 1 FROM shardgate_slots WHERE slot = p_slot) THEN
        RAISE EXCEPTION 'this shard does not own slot %', p_slot
            USING ERRCODE = 'SG001', DETAIL = told::text;
    END IF;
    RETURN true;
END
$$;

-- Reads check without locking (a replica cannot lock, and a read changes nothing):
-- a read of a slot this server does not own raises SG001 rather than answer "not found".
CREATE FUNCTION shardgate_serves(p_slot INTEGER) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE AS $$
DECLARE
    told BIGINT;
BEGIN
    SELECT version INTO told FROM shardgate_map;
    IF FOUND AND NOT EXISTS (SELECT 1 FROM shardgate_slots WHERE slot = p_slot) THEN
        RAISE EXCEPTION 'this shard does not own slot %', p_slot
            USING ERRCODE = 'SG001', DETAIL = told::text;
    END IF;
    RETURN true;
END
$$;

-- Whether a stored row's slot is this server's (lists across shards keep only those).
CREATE FUNCTION shardgate_owns(p_slot INTEGER) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM shardgate_map)
        OR EXISTS (SELECT 1 FROM shardgate_slots WHERE slot = p_slot)
$$;
