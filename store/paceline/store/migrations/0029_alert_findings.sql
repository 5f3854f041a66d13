-- A new finding inside an open alert's episode is pushed again (paceline.pacing.alerts).
--
-- A red-flag episode stays open while progression is paused, so a second
-- positive screen (a new answer, perhaps to a worse question, perhaps days
-- later) joins the open episode and its alert. The alert stays one per
-- (patient, rule, episode); what changes is that each notice records the
-- findings it told the care team about (`notified_findings`: for a red flag,
-- the positive screens' ids), and a finding not among them is pushed as a
-- re-notification of the same alert. `news` on the delivery says, in the
-- minimum necessary (ids, dates, the care the answer asks for), what was new.
ALTER TABLE alert
    ADD COLUMN notified_findings bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE alert_delivery
    ADD COLUMN news text CHECK (length(news) <= 1000);

-- Alerts already pushed told the care team about the findings their flag holds now:
-- without this, each open red-flag alert would be pushed again once after the upgrade.
UPDATE alert a SET notified_findings = f.ids
FROM (
    SELECT f.flag_id, array_agg(DISTINCT x.id_text::bigint ORDER BY x.id_text::bigint) AS ids
    FROM flag f,
        jsonb_array_elements(CASE jsonb_typeof(f.evidence->'daily')
            WHEN 'array' THEN f.evidence->'daily' ELSE '[]'::jsonb END) AS d(day),
        jsonb_array_elements_text(CASE jsonb_typeof(d.day->'screen_ids')
            WHEN 'array' THEN d.day->'screen_ids' ELSE '[]'::jsonb END) AS x(id_text)
    GROUP BY f.flag_id
) f
WHERE a.flag_id = f.flag_id AND a.notified_severity IS NOT NULL;
