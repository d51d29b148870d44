"""What is kept across sessions: the session history (history: the catalogue and its queries;
history_db: its database file; history_logs: what it takes from a log; history_repair: rebuilding
a damaged one from its logs) and the logs fetched from a clip's flash over BLE (logsync)."""
