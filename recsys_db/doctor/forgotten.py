"""The forgotten check: users forgotten (recsys-db forget) since the active models were built."""

from __future__ import annotations

from recsys_db.doctor.base import MODEL_JOBS, Check, Context
from recsys_db.forget import awaiting_retraining


def check_forgotten(ctx: Context) -> Check:
    """Forgotten users (recsys-db forget) whose data the active models may still hold."""
    forgotten, awaiting, stale = awaiting_retraining(ctx.c)
    if awaiting == 0:
        return Check("forgotten", "ok", f"{forgotten} forgotten user(s); every active model was "
                     "built after their forget" if forgotten else "no forgotten users")
    jobs = [job for kind, job in MODEL_JOBS.items() if any(s.startswith(f"{kind} v")
                                                            for s in stale)]
    if "category transitions" in stale:
        jobs.append("refresh-transitions")
    return Check("forgotten", "warn",
                 f"{awaiting} forgotten users awaiting retraining: {', '.join(stale)} "
                 "predate their forget", " && ".join(f"recsys-db jobs run {j}" for j in jobs))
