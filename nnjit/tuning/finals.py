"""The tuner's final rounds and its pick: per searched kernel, the default and a few
finalists (`pick_finalists`: the best point and the best of each other register tile family)
measured again, interleaved, round after round (`FinalRounds`), and the pick over those runs
(`pick_best`: the lowest median ratio to the default's time in the same round, by
`min_gain`, and not slower by the minimum). How many finalists and how long the rounds are
expected to take: `n_finalists`, `finals_cost`.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from nnjit.tuning.budget import BudgetSpent, Clock, KernelState
from nnjit.tuning.report import Progress, relative_error
from nnjit.tuning.runners import CandidateError, Measurement, Runner

log = logging.getLogger("nnjit.tuning")


def n_finalists(st: KernelState, model: float, confirm: int) -> int:
    """`confirm` finalists besides the default for kernels over 5% of the model time (one
    more over 20%), one below."""
    share = st.weight / model
    n = confirm + (1 if share >= 0.2 else 0) if share >= 0.05 else min(confirm, 1)
    return max(0, n)


def finals_cost(sts: list[KernelState], final_rounds: int) -> float:
    """Seconds the final rounds are expected to take."""
    per_round = sum(len(st.finalists) * st.measure_est() + 0.02 for st in sts if len(st.finalists) > 1)
    return final_rounds * per_round


class FinalRounds:
    """Runs the final rounds of the searched kernels on a runner, within the clock."""

    def __init__(self, runner: Runner, clock: Clock, progress: Progress, tolerance: float,
                 final_rounds: int):  # fmt: skip
        self.runner = runner
        self.clock = clock
        self.progress = progress
        self.tolerance = tolerance
        self.final_rounds = final_rounds

    def run(self, sts: list[KernelState]) -> None:
        """Final rounds: per kernel, the default and its best few (by the search's scores) are
        measured again, each once per round in a rotating order, the kernels in turn;
        `final_rounds` rounds (their time is kept free during the search), and up to 3x as
        many more while time is left. Runners with `measure_set` interleave the finalists run by
        run (one request per kernel and round); the others measure them one after the other.
        A kernel's round counts only when all its finalists were measured in it. The pick is
        then made over every run of each finalist (`pick_best`)."""
        for st in sts:
            st.finalists = [0] + pick_finalists(st, len(st.finalists) - 1)
        active = [st for st in sts if len(st.finalists) > 1]
        # the planned rounds (their time was kept free), then more while time is left
        for rnd in range(4 * self.final_rounds):
            went = False
            for st in active:
                if st.rounds < rnd or len(st.finalists) < 2:
                    continue
                if self.clock.left() < len(st.finalists) * st.measure_est() + 0.02:
                    continue
                t_start = time.monotonic()
                self.progress.update(f"final round {rnd + 1}: {st.r.info.describe()}")
                self.runner.prepare(st.r.info, st.seed)
                order = st.finalists[rnd % len(st.finalists):] + st.finalists[: rnd % len(st.finalists)]
                got: dict[int, list[float]] = {}
                complete = True
                if hasattr(self.runner, "measure_set"):
                    try:
                        ms = self.clock.measure_set(st, [st.cands[i] for i in order])
                    except BudgetSpent:
                        ms = None
                    except CandidateError as e:
                        log.warning("%s: final round failed: %s", st.r.info.describe(), e)
                        ms = None
                        st.finalists = st.finalists[:1]  # no more rounds for this kernel
                    if ms is None:
                        st.r.seconds += time.monotonic() - t_start
                        continue
                    d = ms[order.index(0)].times
                    for i, m in zip(order, ms):
                        if i != 0 and relative_error(m.output, st.ref) > self.tolerance:
                            log.warning("%s: final round: point %d computes other numbers now",
                                        st.r.info.describe(), i)  # fmt: skip
                            st.finalists.remove(i)
                            st.times.pop(i, None)
                        else:
                            st.final[i].extend(m.times)
                            st.pairs[i].extend(a / b for a, b in zip(m.times, d) if b > 0)
                    st.rounds += 1
                    went = True
                    st.r.seconds += time.monotonic() - t_start
                    continue
                for i in order:
                    try:
                        m = self.clock.measure(st, st.cands[i], timeout=max(60.0, st.timeout))
                    except BudgetSpent:
                        complete = False
                        break
                    except CandidateError as e:
                        log.warning("%s: final round: point %d failed: %s", st.r.info.describe(), i, e)
                        complete = False
                        if i != 0:
                            st.finalists.remove(i)
                            st.times.pop(i, None)
                        break
                    if relative_error(m.output, st.ref) > self.tolerance and i != 0:
                        log.warning("%s: final round: point %d computes other numbers now",
                                    st.r.info.describe(), i)  # fmt: skip
                        st.finalists.remove(i)
                        st.times.pop(i, None)
                        complete = False
                        break
                    got[i] = list(m.times)
                st.r.seconds += time.monotonic() - t_start
                if complete:
                    for i, ts in got.items():
                        st.final[i].extend(ts)
                        st.pairs[i].append(_score(ts) / _score(got[0]))
                    st.rounds += 1
                    went = True
            if not went:
                break


def pick_finalists(st: KernelState, n: int) -> list[int]:
    """The best measured point by the search's scores, then the best of each other family
    (points with the same register tile, or the same value of the first option where
    there is no `reg`) not yet in, then the next best, n in all: a family whose points
    were all measured under a burst of load still gets its best one measured again."""
    ok = [i for i in st.times if i != 0 and i in st.cands and not _hook(st.points[i])]
    ranked = sorted(ok, key=lambda i: _score(st.times[i]))
    keys = [k for p in st.points for k in p if not str(k).startswith("@")]
    family_key = "reg" if "reg" in keys else (keys[0] if keys else None)
    out: list[int] = ranked[:1] if n > 0 else []
    families: set = {repr(st.ctx.normalized(i).get(family_key)) for i in [0, *out]}
    for i in ranked:
        fam = repr(st.ctx.normalized(i).get(family_key)) if family_key else None
        if len(out) < n and (fam is None or fam not in families):
            out.append(i)
            families.add(fam)
    for i in ranked:
        if len(out) < n and i not in out:
            out.append(i)
    return sorted(out, key=lambda i: _score(st.times[i]))


def pick_best(st: KernelState, min_gain: float) -> int:
    """The pick of a searched kernel (its point index; 0: the default), setting the result's
    default and best times: the finalist with the lowest median ratio of its time to the
    default's in the same final round (runs interleaved: a burst of load slows both, the
    ratio holds; runs from other times are left out, so a default timed at a quiet moment
    cannot beat candidates that only met load), among those that beat the default by
    `min_gain` by that ratio and are not slower than it by the minimum over the final
    rounds' runs (the two statistics disagree when the load is too high to tell: the
    default stays). Without final rounds: the fastest measured point by the search's
    scores, by `min_gain`. Times shown are the minimum over the final rounds' runs."""
    r = st.r
    if st.rounds > 0:
        times = {i: st.final[i] for i in st.finalists if st.final.get(i)}
        rel = {i: median(st.pairs[i]) for i in times if i != 0 and st.pairs.get(i)}
        rel[0] = 1.0
    else:
        times = {i: t for i, t in st.times.items() if i in st.cands and not _hook(st.points[i])}
        rel = {}
    if 0 not in times:
        times[0] = st.times[0]
    r.default_time = _score(times[0])
    if rel:  # the median ratio to the default over the rounds: load cancels out; a pick
        # must also not be slower than the default by the minimum over the rounds
        ok = [i for i in rel if i == 0 or (rel[i] <= 1 - min_gain
                                           and _score(times[i]) <= _score(times[0]))]  # fmt: skip
        best = min(ok, key=lambda i: (rel[i], _score(times[i])))
    else:
        best = min(times, key=lambda i: _score(times[i]))
        if best != 0 and _score(times[best]) > r.default_time * (1 - min_gain):
            best = 0
    r.best_time = _score(times[best])
    return best


def median(xs: list[float]) -> float:
    v = sorted(xs)
    n = len(v)
    return (v[n // 2] + v[(n - 1) // 2]) / 2 if n else math.inf


def _hook(point: dict) -> bool:
    return any(str(key).startswith("@") for key in point)


def _score(times: list[float]) -> float:
    m = Measurement(times, np.zeros(0))
    return m.score


__all__ = ["n_finalists", "finals_cost", "FinalRounds", "pick_finalists", "pick_best", "median"]
