ALTER INDEX records_data_gin RESET (gin_pending_list_limit);
