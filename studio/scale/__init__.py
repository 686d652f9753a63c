"""Beyond one machine: dataset export chunks and sweep runs as Ray tasks.

    from studio.scale import export_dataset_ray, run_sweep

Ray is an optional extra (``pip install -e '.[ray]'``), imported only inside this package and
only when a Ray path runs; sweeps also run locally without it.  The local and the Ray paths call
the same pure functions (image i = f(config, i): ``encode_pair(renderer.render(i))`` from
:mod:`studio.data.export`; run = f(settings): :func:`studio.scale.sweep.run_one`), so their outputs
agree file by file.
"""

from .cluster import ScaleError, ray_session
from .export import export_dataset_ray
from .sweep import SweepError, run_sweep

__all__ = ["ScaleError", "SweepError", "export_dataset_ray", "ray_session", "run_sweep"]
