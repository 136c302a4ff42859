DROP TABLE gateways;
DROP TABLE map_history;
DROP TABLE map_slots;
DROP TABLE map_shards;
DROP TABLE map_state;
