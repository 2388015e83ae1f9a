"""A complete third-party steerdiff plugin: a soft constraint that bans one token and counts steps."""

import torch

import steerdiff


class NoToken(steerdiff.Constraint):
    """Never emit token ``token_id`` (a tiny exact constraint: one banned id everywhere)."""

    guarantee = "exact"

    def __init__(self, token_id: int):
        self.token_id = int(token_id)


@steerdiff.hookimpl
def register_constraints(register):
    register("no_token", NoToken)


@steerdiff.hookimpl
def adjust_logits(run, logits):
    run.state["counter.steps"] = run.state.get("counter.steps", 0) + 1
    rows = [(r, c.token_id) for r, c in run.constraints_of(NoToken)]
    if not rows:
        return None
    allowed = torch.ones((len(rows), 1, logits.shape[-1]), dtype=torch.bool)  # (R, 1, V)
    for i, (_, tid) in enumerate(rows):
        allowed[i, 0, tid] = False
    return steerdiff.LogitsEdit(allowed=allowed, rows=torch.tensor([r for r, _ in rows]))


@steerdiff.hookimpl(wrapper=True)
def on_step_end(run, step):
    """A pluggy hook wrapper: it sees every call of ``on_step_end`` (and returns the results unchanged)."""
    results = yield
    run.state["counter.wrapped"] = run.state.get("counter.wrapped", 0) + 1
    return results


@steerdiff.hookimpl
def finalize(run, results):
    for r in results:
        r.fields["counter.steps"] = str(run.state.get("counter.steps", 0))
        r.fields["counter.wrapped"] = str(run.state.get("counter.wrapped", 0))
