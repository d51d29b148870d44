"""What people see: the terminal views (terminal: live's table, the demo's view), the demo run,
the session report (report_data: its numbers; report: HTML and PNG), exports (export: CSV,
Parquet, FIT; fit: the FIT encoder), and the coach's live dashboard (dashboard/)."""
