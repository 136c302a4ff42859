ALTER TABLE map_state DROP COLUMN tables;
