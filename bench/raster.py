"""Forward+backward cost of one optimisation step through the rasterization primitives, its parts,
its memory, and its ratio to a plain software rasterizer.

Workload W (issue #2): trimesh icosphere(subdivisions=5) (20,480 faces) of radius 0.8 at distance
2.5, fov 45 deg, Lambert-shaded vertex colours, L2 loss; one step = rasterize + interpolate +
antialias + loss + backward w.r.t. positions and colours.

For each resolution, interleaved round by round (so outside load hits every row alike), it times:

- ``torch``: the step with nvdiffrast's semantics (every triangle drawn), and ``torch culled``:
  the same with ``TorchBackend(cull_back_faces=True)`` (W is closed and seen from outside, so
  the image is identical);
- the step's parts: per-triangle setup and the visibility search (run on their own), the rest
  of rasterize (differentiable barycentrics), interpolate, shading + antialias + loss, backward;
- with ``--compiled``, ``torch compiled`` and ``culled+compiled``: the same with
  ``compiled=True`` (:mod:`studio.render.compiled`; the first step's compile time is printed);
- ``llvmpipe``: Mesa's software OpenGL rasterizer drawing the same mesh with the same Lambert
  shading into an RGBA8 + depth framebuffer and reading it back (moderngl, EGL; the ``bench``
  extra: ``pip install -e '.[bench]'``), with as many threads (``LP_NUM_THREADS``) as the step;
- MiB allocated per step (sum of all tensor allocations) and the peak of live tensor memory
  above the step's inputs, counted from the torch profiler's memory events.

    python bench/raster.py                   # CPU with 2 threads, plus CUDA/nvdiffrast if present
    python bench/raster.py --threads 1 --res 256 --runs 21
    python bench/raster.py --compiled        # add the torch.compile rows
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import trimesh

from studio.render import get_backend
from studio.render.raster_search import DrawList, search, take_columns, triangle_setup
from studio.render.torch_raster import DEFAULT_CHUNK_FRAGMENTS, TorchBackend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, perspective, to_clip

MVP = perspective(45.0, 1.0, 0.1, 10.0) @ look_at(torch.tensor([0.0, 0.0, 2.5]))
LIGHT = (0.4, 0.5, 0.8)


def workload(device: torch.device) -> dict[str, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    v = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    return {
        "vertices": v,
        "pos": to_clip(v, MVP).contiguous().to(device),
        "tri": torch.tensor(np.asarray(mesh.faces), dtype=torch.int32, device=device),
        "normal": torch.tensor(np.asarray(mesh.vertex_normals), dtype=torch.float32, device=device),
        "colour": torch.rand(len(v), 3, generator=torch.Generator().manual_seed(0)).to(device),
        "light": torch.nn.functional.normalize(torch.tensor(LIGHT, device=device), dim=0),
    }


def step(be, w: dict[str, torch.Tensor], res: int, target: torch.Tensor) -> dict[str, float]:
    """One step; returns ms per part: rasterize, interpolate, antialias (with shading and loss),
    backward, and their sum as "step"."""
    sync = torch.cuda.synchronize if be.device.type == "cuda" else (lambda: None)
    pos = w["pos"].clone().requires_grad_(True)
    colour = w["colour"].clone().requires_grad_(True)
    sync()
    t = [time.perf_counter()]
    rast, _ = be.rasterize(pos, w["tri"], (res, res), grad_db=False)
    sync()
    t.append(time.perf_counter())
    attrs, _ = be.interpolate(torch.cat([w["normal"], colour], 1), rast, w["tri"])
    sync()
    t.append(time.perf_counter())
    lambert = (attrs[..., :3] * w["light"]).sum(-1, keepdim=True).clamp(min=0.0)
    img = be.antialias(attrs[..., 3:] * (0.1 + 0.9 * lambert), rast, pos, w["tri"])
    loss = torch.nn.functional.mse_loss(img, target)
    sync()
    t.append(time.perf_counter())
    loss.backward()
    sync()
    t.append(time.perf_counter())
    ms = [(b - a) * 1e3 for a, b in zip(t[:-1], t[1:])]
    return {"rasterize": ms[0], "interpolate": ms[1], "antialias": ms[2], "backward": ms[3], "step": sum(ms)}


def search_parts(be: TorchBackend, w: dict[str, torch.Tensor], res: int) -> dict[str, float]:
    """ms of the per-triangle setup alone and of the whole visibility search."""
    draws = DrawList.build(w["pos"], w["tri"], None)
    t0 = time.perf_counter()
    vtx = take_columns(draws.pos_flat.t(), draws.verts.t().reshape(-1)).view(4, 3, -1)
    triangle_setup(vtx, torch.arange(vtx.shape[2]), draws.batch * (res * res), res, res, be.cull_back_faces)
    t1 = time.perf_counter()
    search(draws, res, res, DEFAULT_CHUNK_FRAGMENTS, be.cull_back_faces)
    t2 = time.perf_counter()
    return {"setup": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3}


def step_memory(be, w: dict[str, torch.Tensor], res: int, target: torch.Tensor) -> tuple[float, float]:
    """(MiB allocated in one step, peak MiB of live tensors above the step's start)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(be, w, res, target)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    sizes = np.array([n for _, n in events], dtype=np.int64)
    live = np.cumsum(sizes)
    return float(sizes[sizes > 0].sum()) / 2**20, float(live.max(initial=0)) / 2**20


class Llvmpipe:
    """The same mesh and shading drawn by Mesa's llvmpipe through moderngl (EGL, no display)."""

    VERTEX = """
        #version 330
        uniform mat4 mvp;
        uniform vec3 light;
        in vec3 in_pos; in vec3 in_normal; in vec3 in_colour;
        out vec3 colour;
        void main() {
            gl_Position = mvp * vec4(in_pos, 1.0);
            colour = in_colour * (0.1 + 0.9 * max(dot(in_normal, light), 0.0));
        }"""
    FRAGMENT = """
        #version 330
        in vec3 colour;
        out vec4 frag;
        void main() { frag = vec4(colour, 1.0); }"""

    def __init__(self, w: dict[str, torch.Tensor], threads: int):
        os.environ["LP_NUM_THREADS"] = str(threads)
        import moderngl

        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.renderer = self.ctx.info["GL_RENDERER"]
        prog = self.ctx.program(vertex_shader=self.VERTEX, fragment_shader=self.FRAGMENT)
        prog["mvp"].write(MVP.t().contiguous().numpy().astype("f4").tobytes())
        prog["light"].value = tuple(float(x) for x in w["light"].cpu())
        data = torch.cat([w["vertices"], w["normal"].cpu(), w["colour"].cpu()], 1).numpy().astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(w["tri"].cpu().numpy().astype("i4").tobytes())
        self.vao = self.ctx.vertex_array(prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_colour")], ibo)
        self.fbos: dict[int, object] = {}

    def draw_ms(self, res: int) -> float:
        import moderngl

        if res not in self.fbos:
            self.fbos[res] = self.ctx.framebuffer(self.ctx.renderbuffer((res, res)),
                                                  self.ctx.depth_renderbuffer((res, res)))
        fbo = self.fbos[res]
        t0 = time.perf_counter()
        fbo.use()
        self.ctx.enable(moderngl.DEPTH_TEST)
        fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.vao.render()
        fbo.read(components=4)
        return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--runs", type=int, default=11, help="timed rounds per resolution (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the torch backend and llvmpipe")
    ap.add_argument("--compiled", action="store_true",
                    help="add a row for TorchBackend(compiled=True) (torch.compile; its compile time is printed)")
    ap.add_argument("--no-tune-alloc", action="store_true",
                    help="leave glibc's allocator as it is (the studio's entry points tune it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tuned = False if args.no_tune_alloc else tune_cpu_allocator()

    backends = [("torch", TorchBackend("cpu")), ("torch culled", TorchBackend("cpu", cull_back_faces=True))]
    if args.compiled:
        backends += [("torch compiled", TorchBackend("cpu", compiled=True)),
                     ("culled+compiled", TorchBackend("cpu", cull_back_faces=True, compiled=True))]
    if torch.cuda.is_available():
        backends.append(("torch", TorchBackend("cuda")))
        try:
            backends.append(("nvdiffrast", get_backend("nvdiffrast", "cuda")))
        except Exception as exc:  # noqa: BLE001 - report and bench what is there
            print(f"nvdiffrast not benchmarked: {exc}")
    cpu_w = workload(torch.device("cpu"))
    try:
        gl: Llvmpipe | None = Llvmpipe(cpu_w, args.threads)
    except Exception as exc:  # noqa: BLE001 - the baseline is optional
        gl = None
        print(f"llvmpipe baseline skipped ({exc}); install it with `pip install -e '.[bench]'` on a machine with "
              f"Mesa's EGL (libegl-mesa0).")

    print(f"workload W: icosphere(5) 20,480 faces, {args.runs} interleaved rounds per resolution, "
          f"{args.threads} CPU threads, allocator tuned: {tuned}, torch {torch.__version__}"
          + (f", baseline {gl.renderer}" if gl else ""))
    parts = ("setup", "search", "rasterize", "interpolate", "antialias", "backward")
    header = (f"{'backend':<15} {'dev':<4} {'res':>5} {'step ms':>8} {'x llvmpipe':>10} "
              + " ".join(f"{p[:8]:>8}" for p in parts) + f" {'MiB alloc':>9} {'MiB peak':>8}")
    print(header)
    print("-" * len(header))
    compiled = [(name, be) for name, be in backends if getattr(be, "compiled", False)]
    if compiled:  # the backends share the compiled kernels: the first one pays for compilation
        name, be = compiled[0]
        t0 = time.perf_counter()
        step(be, cpu_w, args.res[0], torch.full((1, args.res[0], args.res[0], 3), 0.5))
        print(f"{name}: first step {time.perf_counter() - t0:.1f} s (compilation; less when Inductor's "
              f"disk cache already holds the kernels)")
    for res in args.res:
        ws = {be.device: workload(be.device) for _, be in backends}
        targets = {dev: torch.full((1, res, res, 3), 0.5, device=dev) for dev in ws}
        samples: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(backends))}
        gl_ms: list[float] = []
        for _ in range(2):
            for _, be in backends:
                step(be, ws[be.device], res, targets[be.device])
            if gl:
                gl.draw_ms(res)
        for _ in range(args.runs):
            for i, (_, be) in enumerate(backends):
                row = step(be, ws[be.device], res, targets[be.device])
                if be.name == "torch" and be.device.type == "cpu":
                    row.update(search_parts(be, ws[be.device], res))
                samples[i].append(row)
            if gl:
                gl_ms.append(gl.draw_ms(res))
        base = statistics.median(gl_ms) if gl_ms else None
        for i, (name, be) in enumerate(backends):
            med = {k: statistics.median(s[k] for s in samples[i]) for k in samples[i][0]}
            alloc, peak = step_memory(be, ws[be.device], res, targets[be.device]) if be.device.type == "cpu" else (0, 0)
            ratio = f"{med['step'] / base:>9.2f}x" if base else f"{'-':>10}"
            cells = " ".join(f"{med[p]:>8.1f}" if p in med else f"{'-':>8}" for p in parts)
            print(f"{name:<15} {be.device.type:<4} {res:>5} {med['step']:>8.1f} {ratio} {cells} {alloc:>9.0f} {peak:>8.0f}")
        if base:
            print(f"{'llvmpipe':<15} {'cpu':<4} {res:>5} {base:>8.1f} {1:>9.2f}x  (draw + readback, RGBA8 + depth)")
    print("ms are medians; setup and search are timed on their own (search includes setup); rasterize, "
          "interpolate, antialias (with shading and loss) and backward add up to the step. "
          "MiB alloc: all tensor allocations of one step; MiB peak: live tensors above the inputs "
          "(torch profiler memory events).")


if __name__ == "__main__":
    main()
