-- The logical tables clients may use, stored with the map.
ALTER TABLE map_state ADD COLUMN tables TEXT[] NOT NULL DEFAULT '{}';
