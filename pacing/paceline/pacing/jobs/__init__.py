"""Pacing's work as jobs on a PostgreSQL queue (procrastinate), and the clock that defers them.

- `queue`: the procrastinate app, the queues, and `defer`, which defers a job
  inside the caller's transaction;
- `tasks`: the units of work (roll up a patient's new days, evaluate a patient,
  deliver an alert, and the periodic fan-outs the clock defers);
- `clock`: the APScheduler leader that only defers periodic jobs;
- `leader`: the advisory-lock election the clock runs under;
- `worker`: running workers (`paceline worker`);
- `timesource`: what "now" is for all of them (the real time, or `PACELINE_CLOCK_START`).
"""
