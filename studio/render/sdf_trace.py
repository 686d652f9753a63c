"""No-grad ray marching for the SDF renderer: sphere tracing, hit refinement, closest approach, shadows.

Everything here runs under ``torch.no_grad`` on detached parameters; it only decides *where* the
differentiable evaluation in :mod:`studio.render.sdf` happens.  Rays are component-major ([3,N])
and the set of active rays is compacted whenever some finish, so the work per step shrinks with
the number of rays still marching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Tensor = torch.Tensor
SDF = Callable[[Tensor], Tensor]  # [3,N] points -> [N] distances

_GOLDEN = 0.6180339887498949


def ray_sphere(o: Tensor, d: Tensor, centre: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """Entry and exit distances [N] of unit rays (o, d) [3,N] through a sphere; entry > exit on a miss."""
    oc = o - centre[:, None]
    b = (oc * d).sum(0)
    c = (oc * oc).sum(0) - radius * radius
    disc = b * b - c
    s = disc.clamp_min(0).sqrt()
    miss = disc < 0
    t0 = torch.where(miss, torch.full_like(b, float("inf")), -b - s)
    t1 = torch.where(miss, torch.full_like(b, -float("inf")), -b + s)
    return t0, t1


def penumbra_exit(o: Tensor, d: Tensor, centre: Tensor, radius: float, k: float) -> Tensor:
    """Largest t [N] at which a shadow ray (o, d) [3,N] can still darken: where the point o + t d is
    closer than R + t/k to the centre of a sphere (C, R) containing every occluder (beyond that
    k·f/t > 1 for any surface inside it).  -inf where the ray never gets that close.
    """
    oc = o - centre[:, None]
    b = (oc * d).sum(0) - radius / k
    c = (oc * oc).sum(0) - radius * radius
    a = 1 - 1 / (k * k)
    if a <= 0:  # k <= 1: the cone widens as fast as the ray advances; no finite bound
        return torch.full_like(b, float("inf"))
    disc = b * b - a * c
    t1 = (-b + disc.clamp_min(0).sqrt()) / a
    return torch.where(disc < 0, torch.full_like(b, -float("inf")), t1)


@dataclass
class MarchResult:
    """Per-ray outcome of :func:`sphere_trace` (all [N]).

    hit: the ray stopped with f below the hit threshold.  unfinished: it was still marching when
    the loop ended (step budget or tail cut).  t, f: last sample; t_prev, f_prev: the one before.
    f_min, t_min: smallest distance seen along the ray and where (inf where never marched).
    t_lo: the sample before t_min (bracket start for refining the closest approach).
    steps: loop iterations run; ray_steps: distance evaluations summed over rays.
    """

    hit: Tensor
    unfinished: Tensor
    t: Tensor
    f: Tensor
    t_prev: Tensor
    f_prev: Tensor
    f_min: Tensor
    t_min: Tensor
    t_lo: Tensor
    steps: int
    ray_steps: int


# State rows of the compacted march.
_T, _TEND, _TPREV, _FPREV, _F, _FMIN, _TMIN, _TLO = range(6, 14)
_ROWS = 14
_BIG = 1e30  # "no previous sample": finite, so that 0 * _BIG stays 0 in the blends below


@torch.no_grad()
def sphere_trace(sdf: SDF, o: Tensor, d: Tensor, t_start: Tensor, t_end: Tensor, *, eps_abs: float,
                 eps_rel: float, max_steps: int, omega: float = 1.0, tail: int = 0,
                 tail_after: int = 0, min_step_rel: float = 0.0) -> MarchResult:
    """March unit rays (o, d) [3,N] from t_start to t_end [N] until f < eps_abs + eps_rel * t.

    ``omega`` > 1 enables over-relaxed steps (Keinert et al. 2014, "Enhanced sphere tracing"): a
    step is f times 1.9 / (1 + slope), clamped to [1, omega], where slope = -df/dt from the last two
    samples; that is nearly the longest step whose unbounding sphere can still overlap the
    previous one when the surface ahead is flat.  When the spheres do not overlap a surface may
    have been skipped: the sample is not accepted as a hit and the ray goes back to a plain step
    from the previous sample, so no surface is skipped.

    ``min_step_rel`` > 0 (only without relaxation) makes every step at least that fraction of t:
    cone marching, used to carry grazing rays past a near miss within the pixel footprint.

    Once at most ``tail`` rays remain after ``tail_after`` steps the loop stops and those rays are
    reported as unfinished (each further step would cost the fixed overhead of a full step).
    """
    n_all = o.shape[1]
    dev, dt = o.device, o.dtype
    inf = float("inf")
    rec = torch.full((_ROWS, n_all), inf, device=dev, dtype=dt)
    hit_all = torch.zeros(n_all, dtype=torch.bool, device=dev)
    left_all = torch.zeros(n_all, dtype=torch.bool, device=dev)
    idx = torch.nonzero(t_start <= t_end).squeeze(1)
    s = torch.empty(_ROWS, idx.numel(), device=dev, dtype=dt)
    s[0:3] = o.index_select(1, idx)
    s[3:6] = d.index_select(1, idx)
    s[_T] = t_start.index_select(0, idx)
    s[_TEND] = t_end.index_select(0, idx)
    s[_TPREV] = s[_T]
    s[_FPREV] = _BIG
    s[_FMIN] = inf
    s[_TMIN] = s[_T]
    s[_TLO] = s[_T]
    relax = omega > 1.0
    steps = 0
    ray_steps = 0
    for steps in range(1, max_steps + 1):
        n = idx.numel()
        if n == 0 or (tail and n <= tail and steps > tail_after):
            steps -= 1
            break
        ray_steps += n
        t, t_prev, f_prev = s[_T], s[_TPREV], s[_FPREV]
        f = sdf(torch.addcmul(s[0:3], s[3:6], t))
        s[_F] = f
        better = torch.gt(s[_FMIN], f, out=torch.empty_like(f))  # 1.0 / 0.0 (float blends are fast)
        torch.minimum(s[_FMIN], f, out=s[_FMIN])
        s[_TMIN].lerp_(t, better)
        s[_TLO].lerp_(t_prev, better)
        if relax:
            gap = t - t_prev
            slope = ((f_prev - f) / gap).clamp(0.0, 1.0)  # -df/dt, from the last two samples
            factor = (1.9 / (1 + slope)).clamp(1.0, omega)
            t_next = torch.addcmul(t, f, factor)
            # Unbounding spheres of this and the previous sample do not overlap: go back.
            bad = torch.gt(gap, f_prev + f.abs(), out=torch.empty_like(f))
            t_next.lerp_(t_prev + f_prev, bad)
            new_prev = torch.lerp(t, t_prev, bad)
            new_fprev = torch.lerp(f, f_prev, bad)
            # A sample behind a possibly skipped gap is no hit: it may lie behind another surface.
            hit_margin = f - eps_rel * t - eps_abs + bad * _BIG
        else:
            t_next = t + (torch.maximum(f, min_step_rel * t) if min_step_rel > 0 else f)
            new_prev, new_fprev = t, f
            hit_margin = f - eps_rel * t - eps_abs
        done = torch.minimum(hit_margin, s[_TEND] - t_next) < 0
        fin = torch.nonzero(done).squeeze(1)
        if fin.numel():
            rec.index_copy_(1, idx.index_select(0, fin), s.index_select(1, fin))
            hit_all[idx.index_select(0, fin)] = hit_margin.index_select(0, fin) < 0
            keep = torch.nonzero(~done).squeeze(1)
            s = s.index_select(1, keep)
            idx = idx.index_select(0, keep)
            t_next = t_next.index_select(0, keep)
            new_prev = new_prev.index_select(0, keep)
            new_fprev = new_fprev.index_select(0, keep)
        s[_TPREV] = new_prev
        s[_FPREV] = new_fprev
        s[_T] = t_next
    if idx.numel():
        left_all[idx] = True
        # Report the last evaluated sample (undo the pending step); the one before is gone.
        s[_T] = s[_TPREV]
        s[_F] = s[_FPREV]
        s[_FPREV] = inf
        rec[:, idx] = s
    return MarchResult(hit=hit_all, unfinished=left_all, t=rec[_T], f=rec[_F], t_prev=rec[_TPREV],
                       f_prev=rec[_FPREV], f_min=rec[_FMIN], t_min=rec[_TMIN], t_lo=rec[_TLO], steps=steps,
                       ray_steps=ray_steps)


@torch.no_grad()
def refine_hits(sdf: SDF, o: Tensor, d: Tensor, t: Tensor, f: Tensor, t_prev: Tensor, f_prev: Tensor,
                iters: int = 6, tol: float = 0.0) -> tuple[Tensor, Tensor]:
    """Secant iterations towards f = 0 from the last two march samples; returns (t, f) of the best
    iterate (smallest |f|).

    Rays that stopped within the hit threshold without crossing the surface (grazing rays) find no
    root: their best |f| stays well above ``tol``, which is how the caller tells them apart.
    """
    a, fa, b, fb = t_prev, f_prev, t, f
    # Without a usable previous sample (a hit on the first step), start from a second point.
    lone = ~torch.isfinite(fa) | (a == b)
    if bool(lone.any()):
        a = torch.where(lone, b + fb.abs().clamp_min(1e-4), a)
        fa = torch.where(lone, sdf(torch.addcmul(o, d, a)), fa)
    best_t, best_f = b, fb
    span = (b - a).abs()
    for _ in range(iters):
        den = fb - fa
        c = b - fb * (b - a) / den
        c = torch.where(torch.isfinite(c) & (den != 0), c, b)
        c = torch.minimum(torch.maximum(c, b - 2 * span), b + 2 * span)
        fc = sdf(torch.addcmul(o, d, c))
        better = fc.abs() < best_f.abs()
        best_t = torch.where(better, c, best_t)
        best_f = torch.where(better, fc, best_f)
        a, fa, b, fb = b, fb, c, fc
        if bool((best_f.abs() <= tol).all()):
            break
    return best_t, best_f


@torch.no_grad()
def refine_min(sdf: SDF, o: Tensor, d: Tensor, lo: Tensor, hi: Tensor, iters: int = 14,
               raw: bool = False) -> tuple[Tensor, Tensor]:
    """Golden-section search for the smallest distance along each ray within [lo, hi]; (t, f).

    With ``raw`` the function is called with the distances t [N] instead of points.
    """
    def at(tt: Tensor) -> Tensor:
        return sdf(tt) if raw else sdf(torch.addcmul(o, d, tt))

    a, b = lo, hi
    c = b - _GOLDEN * (b - a)
    e = a + _GOLDEN * (b - a)
    fc = at(c)
    fe = at(e)
    for _ in range(iters):
        left = fc < fe  # the minimum lies in [a, e]
        b = torch.where(left, e, b)
        a = torch.where(left, a, c)
        new = torch.where(left, b - _GOLDEN * (b - a), a + _GOLDEN * (b - a))
        fn = at(new)
        c, e, fc, fe = (torch.where(left, new, e), torch.where(left, c, new),
                        torch.where(left, fn, fe), torch.where(left, fc, fn))
    pick = fc < fe
    return torch.where(pick, c, e), torch.where(pick, fc, fe)


@dataclass
class PrimaryTrace:
    """Outcome of :func:`trace_primary`: flat ray indices and distances of hits and soft misses."""

    hit_idx: Tensor
    t_hit: Tensor
    miss_idx: Tensor
    t_miss: Tensor
    steps: int
    ray_steps: int
    resumed: int


@torch.no_grad()
def trace_primary(sdf: SDF, o: Tensor, d: Tensor, t_start: Tensor, t_end: Tensor, *, eps_abs: float, eps_rel: float,
                  max_steps: int, omega: float, tail: int, tail_after: int, refine_iters: int, min_iters: int,
                  cutoff: float, scale: float, t_surface: Tensor | None = None,
                  resume_steps: int | None = None) -> PrimaryTrace:
    """Camera rays: march, confirm hits by finding the crossing, resume grazing rays, and locate the
    closest approach of misses that come within ``cutoff`` of the surface.

    1. Sphere tracing with a footprint-relative threshold (eps_abs + eps_rel·t) and relaxed steps.
    2. Stopped (or tail-cut) rays get secant steps; a crossing found to within eps_abs is a hit.
    3. The others passed within a pixel footprint of a surface without crossing it (silhouettes).
       They resume marching past the near miss (cone steps of at least eps_rel·t, hits only at
       eps_abs) so that a surface behind them is still found; then step 2 again.
    4. Rays that end without a hit and came within ``cutoff`` are misses; golden-section search
       refines their closest approach inside the bracket around the smallest sample.

    ``t_surface`` [N] (inf where none) are hits found analytically (planes split off the model);
    ``t_end`` must not exceed them, and rays that end without a marched hit take them.
    """
    dev = o.device
    mr = sphere_trace(sdf, o, d, t_start, t_end, eps_abs=eps_abs, eps_rel=eps_rel, max_steps=max_steps,
                      omega=omega, tail=tail, tail_after=tail_after)
    steps, ray_steps = mr.steps, mr.ray_steps
    cand = torch.nonzero(mr.hit | mr.unfinished).squeeze(1)
    t_c, f_c = refine_hits(sdf, o[:, cand], d[:, cand], mr.t[cand], mr.f[cand], mr.t_prev[cand], mr.f_prev[cand],
                           iters=refine_iters, tol=eps_abs * 1e-3)
    crossed = f_c.abs() <= eps_abs
    hit_idx, t_hit = [cand[crossed]], [t_c[crossed]]
    f_min, t_min, t_lo = mr.f_min.clone(), mr.t_min.clone(), mr.t_lo.clone()
    ended = ~(mr.hit | mr.unfinished)
    rest = cand[~crossed]
    if rest.numel():
        o_r, d_r = o[:, rest], d[:, rest]
        m2 = sphere_trace(sdf, o_r, d_r, mr.t[rest], t_end[rest], eps_abs=eps_abs, eps_rel=0.0,
                          max_steps=resume_steps or max_steps, omega=1.0, min_step_rel=eps_rel)
        steps, ray_steps = steps + m2.steps, ray_steps + m2.ray_steps
        c2 = torch.nonzero(m2.hit | m2.unfinished).squeeze(1)
        t2, f2 = refine_hits(sdf, o_r[:, c2], d_r[:, c2], m2.t[c2], m2.f[c2], m2.t_prev[c2], m2.f_prev[c2],
                             iters=refine_iters, tol=eps_abs * 1e-3)
        ok = f2.abs() <= eps_abs
        hit_idx.append(rest[c2[ok]])
        t_hit.append(t2[ok])
        gone = torch.ones(rest.numel(), dtype=torch.bool, device=dev)
        gone[c2[ok]] = False
        ended[rest[gone]] = True
        better = m2.f_min < f_min[rest]
        f_min[rest] = torch.where(better, m2.f_min, f_min[rest])
        t_min[rest] = torch.where(better, m2.t_min, t_min[rest])
        t_lo[rest] = torch.where(better, m2.t_lo, t_lo[rest])
    if t_surface is not None:
        flat = ended & torch.isfinite(t_surface)
        flat_idx = torch.nonzero(flat).squeeze(1)
        hit_idx.append(flat_idx)
        t_hit.append(t_surface[flat_idx])
        ended &= ~flat
    soft = ended & torch.isfinite(f_min) & (f_min < cutoff)
    miss_idx = torch.nonzero(soft).squeeze(1)
    # Bracket of the closest approach: from the sample before the smallest one to the next sample
    # (at most omega·f away), widened on both sides to the reach of a sphere of the model's size
    # (a ray at distance f from a sphere of radius R is within sqrt(2Rf + f^2) of its closest point).
    f_mn, t_mn = f_min[miss_idx].clamp_min(0), t_min[miss_idx]
    reach = (2 * scale * f_mn + f_mn * f_mn).sqrt()
    hi = torch.maximum(torch.minimum(t_mn + torch.maximum(omega * f_mn, reach), t_end[miss_idx]), t_mn)
    lo = torch.minimum(t_lo[miss_idx], t_mn - reach).clamp_min(0)
    t_m, _ = refine_min(sdf, o[:, miss_idx], d[:, miss_idx], lo, hi, iters=min_iters)
    return PrimaryTrace(hit_idx=torch.cat(hit_idx), t_hit=torch.cat(t_hit), miss_idx=miss_idx, t_miss=t_m,
                        steps=steps, ray_steps=ray_steps, resumed=int(rest.numel()))


@dataclass
class ShadowResult:
    """Per shadow ray: ``res`` = min over samples of k·f/t clamped to [0, 1] (0 = blocked) and the
    distance ``t_star`` where that minimum was found."""

    res: Tensor
    t_star: Tensor
    steps: int
    ray_steps: int


@torch.no_grad()
def shadow_trace(sdf: SDF, o: Tensor, d: Tensor, t_start: float, t_end: Tensor, *, k: float, eps: float,
                 min_step: float, max_steps: int, res_floor: float = 0.0, scale: float = 1.0,
                 min_iters: int = 12, tail: int = 0, tail_after: int = 0) -> ShadowResult:
    """March from points o [3,M] along unit light directions d [3,M] and estimate the penumbra.

    The classic soft-shadow estimate: visibility = min_t k·f(o + t d)/t, 0 once f < eps.  A ray
    stops when it leaves [t_start, t_end], is blocked, or its estimate drops to ``res_floor`` (it
    can only decrease further; such rays count as blocked).  For rays in the penumbra the minimum
    of f/t is then located by golden-section search between the neighbouring samples, so that
    the estimate (and t*) vary smoothly with the geometry and the light.  As for camera rays, the
    loop stops once at most ``tail`` rays remain after ``tail_after`` steps; those keep the
    estimate they have reached (rays creeping along a surface, already dark).
    """
    m = o.shape[1]
    dev, dt = o.device, o.dtype
    res_all = torch.ones(m, device=dev, dtype=dt)
    tst_all = torch.full((m,), t_start, device=dev, dtype=dt)
    tlo_all = torch.full((m,), t_start, device=dev, dtype=dt)
    idx = torch.nonzero(t_end > t_start).squeeze(1)
    s = torch.empty(6, idx.numel(), device=dev, dtype=dt)
    o_a = o.index_select(1, idx)
    d_a = d.index_select(1, idx)
    s[0] = t_start  # t
    s[1] = t_end.index_select(0, idx)
    s[2] = 1.0  # res
    s[3] = t_start  # t*
    s[4] = t_start  # previous t
    s[5] = t_start  # sample before t*
    steps = 0
    ray_steps = 0
    for steps in range(1, max_steps + 1):
        n = idx.numel()
        if n == 0 or (tail and n <= tail and steps > tail_after):
            steps -= 1
            break
        ray_steps += n
        t = s[0]
        f = sdf(torch.addcmul(o_a, d_a, t))
        r = f * k / t
        better = torch.gt(s[2], r, out=torch.empty_like(r))
        s[3].lerp_(t, better)
        s[5].lerp_(s[4], better)
        torch.minimum(s[2], r, out=s[2])
        t_next = t + f.clamp_min(min_step)
        # Done: blocked (f < eps), out of the interval, or dark enough.
        margin = torch.minimum(torch.minimum(f - eps, s[1] - t_next), s[2] - res_floor)
        done = margin <= 0
        fin = torch.nonzero(done).squeeze(1)
        if fin.numel():
            gidx = idx.index_select(0, fin)
            dark = (margin.index_select(0, fin) != (s[1] - t_next).index_select(0, fin)).to(dt)
            res_all[gidx] = s[2].index_select(0, fin) * (1 - dark)
            tst_all[gidx] = s[3].index_select(0, fin)
            tlo_all[gidx] = s[5].index_select(0, fin)
            keep = torch.nonzero(~done).squeeze(1)
            s = s.index_select(1, keep)
            o_a = o_a.index_select(1, keep)
            d_a = d_a.index_select(1, keep)
            idx = idx.index_select(0, keep)
            t_next = t_next.index_select(0, keep)
        s[4] = s[0]
        s[0] = t_next
    if idx.numel():
        res_all[idx] = s[2]
        tst_all[idx] = s[3]
        tlo_all[idx] = s[5]
    res_all = res_all.clamp(0, 1)
    pen = torch.nonzero((res_all > 0) & (res_all < 1)).squeeze(1)
    if pen.numel() and min_iters > 0:
        ts, f_s = tst_all[pen], res_all[pen] * tst_all[pen] / k
        reach = (2 * scale * f_s + f_s * f_s).sqrt()
        lo = torch.minimum(tlo_all[pen], ts - reach).clamp_min(t_start)
        hi = torch.maximum(ts + torch.maximum(f_s, torch.full_like(f_s, min_step)), ts + reach)
        hi = torch.minimum(hi, t_end[pen]).clamp_min(ts)
        o_p, d_p = o[:, pen], d[:, pen]

        def ratio(tt: Tensor) -> Tensor:
            return sdf(torch.addcmul(o_p, d_p, tt)) / tt

        t_best, g = refine_min(ratio, torch.zeros_like(o_p[:1]), torch.ones_like(o_p[:1]), lo, hi, iters=min_iters,
                               raw=True)
        improved = g * k < res_all[pen]
        res_all[pen] = torch.where(improved, (g * k).clamp(0, 1), res_all[pen])
        tst_all[pen] = torch.where(improved, t_best, tst_all[pen])
    return ShadowResult(res=res_all, t_star=tst_all, steps=steps, ray_steps=ray_steps)
