-- A delivery whose alerts were all resolved before it was sent is cancelled, not sent
-- (paceline.pacing.alerts.delivery): the alert is in the inbox with its history, and a
-- push about something already over (a back-filled history, a message held by quiet
-- hours or retried while the episode ended, a reminder answered meanwhile) is noise.
ALTER TABLE alert_delivery DROP CONSTRAINT alert_delivery_status_check;
ALTER TABLE alert_delivery ADD CONSTRAINT alert_delivery_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'dead', 'disabled', 'cancelled'));
