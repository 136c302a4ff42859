DROP TABLE records;
DROP SEQUENCE record_version_seq;
