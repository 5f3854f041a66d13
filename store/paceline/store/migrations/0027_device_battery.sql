-- The battery level each wearable reports reaches its device row.
--
-- device.battery_pct (0001) was never written: the gateway reads the Battery
-- Level (0x2A19) on every connection and keeps it in its spool, and now its
-- uploader stores it here (paceline.store.registry.record_battery_levels). The
-- reading's time comes with it, so that a late upload (a gateway that was
-- offline) or another gateway's older reading never replaces a newer level.
-- The ingest role may update these two columns and last_seen, nothing else.
ALTER TABLE device ADD COLUMN battery_at timestamptz;
GRANT UPDATE (battery_pct, battery_at) ON device TO paceline_ingest;
