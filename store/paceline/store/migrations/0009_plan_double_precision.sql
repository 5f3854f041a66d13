-- Plan numbers in double precision: a baseline of 4980.6 stored as real came back
-- as 4980.60009765625 and showed as 4980.6001 in plans and audit text. Display
-- rounding happens in paceline.pacing.wording, never by storing less precision.
ALTER TABLE pacing_plan
    ALTER COLUMN baseline TYPE double precision,
    ALTER COLUMN quota TYPE double precision,
    ALTER COLUMN start_fraction TYPE double precision,
    ALTER COLUMN step_fraction TYPE double precision;

ALTER TABLE flare_risk ALTER COLUMN score TYPE double precision;
