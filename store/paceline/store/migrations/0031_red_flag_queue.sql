-- A positive red-flag screen queues its evaluation in the patient's own transaction.
--
-- The patient's role may not touch the job queue, so the critical
-- `safety.red_flag` alert waited for the next rollup tick (up to 5 minutes)
-- to have its evaluation deferred. `paceline_queue_red_flag_evaluation`
-- (SECURITY DEFINER) does that one thing for a patient session: given the id
-- of one of the verified patient's own positive screens that no evaluation
-- has read yet, it lists the screen's local day as due and defers the
-- patient's `paceline.evaluate` job (under the patient's lock and the
-- evaluation's queueing lock, exactly as `paceline.pacing.jobs.tasks` does;
-- a pending evaluation already holding the lock reads the list when it
-- starts). Any other screen (another patient's, a negative one, one already
-- evaluated, none) queues nothing and returns false; a session without a
-- verified patient identity is refused. The caller chooses nothing but the
-- screen id: not the task, the patient, the day or the arguments.
CREATE FUNCTION paceline_queue_red_flag_evaluation(p_screen bigint)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    me  bigint := public.paceline_patient_self();
    v_day date;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'only a verified patient queues the evaluation of their red-flag screen'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT (s.answered_at AT TIME ZONE p.timezone)::date INTO v_day
    FROM public.red_flag_screen s JOIN public.patient p ON p.patient_id = s.patient_id
    WHERE s.screen_id = p_screen AND s.patient_id = me
        AND s.evaluated_at IS NULL AND cardinality(s.positive) > 0;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO public.evaluation_due (patient_id, day) VALUES (me, v_day);
    BEGIN
        PERFORM public.procrastinate_defer_jobs_v1(ARRAY[ROW(
            'evaluate', 'paceline.evaluate', 0, 'patient:' || me, 'evaluate:' || me,
            jsonb_build_object('patient_id', me), NULL
        )::public.procrastinate_job_to_defer_v1]);
    EXCEPTION WHEN unique_violation THEN
        -- An evaluation of this patient is pending already: it reads the list when it starts.
        NULL;
    END;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION paceline_queue_red_flag_evaluation(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION paceline_queue_red_flag_evaluation(bigint) TO paceline_patient;
