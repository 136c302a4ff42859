DROP TRIGGER records_capture ON records;
DROP FUNCTION shardgate_capture();
DROP TABLE shardgate_move_log;
DROP TABLE shardgate_moving;
