"""Choosing an implementation and a device: one switch for every method.

Every method keeps its equations in plain NumPy, in ``nnlocal/methods/<method>/reference.py``.
Beside it, ``cpu.py`` holds Numba kernels and ``cuda.py`` holds ``numba.cuda`` kernels, each with
the signature of its twin in ``reference.py``. A model asks for the module that computes its
equations with :func:`implementation` and calls the same function names on it, whichever module
that is::

    from nnlocal import kernels
    K = kernels.implementation("nnlocal.methods.deep", self.device)
    K.linear_relax(M, c, s, ...)        # reference.linear_relax, cpu.linear_relax or cuda.linear_relax

**Implementation** (process-wide): ``"numba"`` (the default) runs the Numba kernels that pay on
this machine; ``"numpy"`` runs the reference functions only, and no Numba function is ever
compiled. Choose it once, in three equivalent ways::

    nnlocal.kernels.use("numpy")                 # from here on
    with nnlocal.kernels.use("numpy"): ...       # inside the block only
    NNLOCAL_KERNELS=numpy python demo.py         # the environment variable (read at import)

(``--kernels numpy`` on ``nnlocal tour`` and on every demo sets the same switch.) A kernel that is
not faster than its reference is not kept: ``cpu.py`` then re-exports the reference function, and
where a kernel wins only at some sizes, its ``cpu.py`` function chooses by size.

**Device** (per object): ``device="cpu" | "cuda"``, checked by :func:`check_device`, the one
helper every class uses. ``"cuda"`` runs ``cuda.py`` whatever the switch says, on a real GPU or
under Numba's simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported). Importing
nnlocal never imports ``numba.cuda``.

Pieces that several methods share live here: :mod:`nnlocal.kernels.conv` (im2col / col2im and the
tap convolution of the convolution engine), :mod:`nnlocal.kernels.pool` (max pooling and window
sums) and :mod:`nnlocal.kernels.cuda_launch` (CUDA block sizes, uploads). The optimizers' update
rules follow the same pattern in :mod:`nnlocal.optim` (``reference.py`` and ``cpu.py``).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os

__all__ = ["IMPLEMENTATIONS", "DEVICES", "use", "current", "implementation", "check_device", "cuda_available",
           "add_argument", "limit_threads"]

#: the accepted implementation names of :func:`use` and ``NNLOCAL_KERNELS``
IMPLEMENTATIONS = ("numpy", "numba")
#: the accepted ``device`` strings
DEVICES = ("cpu", "cuda")

_ENV = "NNLOCAL_KERNELS"


def _check_implementation(name, who: str) -> str:
    if not isinstance(name, str) or name not in IMPLEMENTATIONS:
        raise ValueError(f"{who}: the implementation must be 'numpy' or 'numba', got {name!r}")
    return name


_current = os.environ.get(_ENV, "numba")


def current() -> str:
    """The implementation in force: ``"numpy"`` or ``"numba"``."""
    return _check_implementation(_current, "the environment variable NNLOCAL_KERNELS")  # use() validates its own


class use:
    """Select the implementation of every method: ``"numpy"`` (the references) or ``"numba"``.

    Works as a plain call (the choice stays in force) and as a context manager (the previous
    choice comes back on exit)::

        nnlocal.kernels.use("numpy")
        with nnlocal.kernels.use("numba"):
            ...
    """

    def __init__(self, name: str):
        global _current
        self.name = _check_implementation(name, "nnlocal.kernels.use")
        self.previous = _current
        _current = self.name

    def __enter__(self) -> "use":
        return self

    def __exit__(self, *exc) -> None:
        global _current
        _current = self.previous

    def __repr__(self) -> str:
        return f"nnlocal.kernels.use({self.name!r})"


@contextlib.contextmanager
def limit_threads(threads: int = 1):
    """Limit Numba and every BLAS/OpenMP library (threadpoolctl) to ``threads`` threads inside the block.

    The tour and the sweep workers run under it: their matrices are small, and on a busy machine
    more threads only fight over the cores. Numba's setting belongs to the calling thread and is
    made first: it may load an OpenMP runtime, which threadpoolctl then limits too. Importing
    numba compiles nothing, so this is safe under ``use("numpy")``.
    """
    from threadpoolctl import threadpool_limits

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"nnlocal.kernels.limit_threads: threads must be a positive int, got {threads!r}")
    numba = importlib.import_module("numba")
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(before)


def _passive_openmp_launch(launch):
    """Numba's ``_launch_threads``, run with ``OMP_WAIT_POLICY=PASSIVE`` when nobody chose a policy."""
    @functools.wraps(launch)
    def wrapper():
        mine = "OMP_WAIT_POLICY" not in os.environ
        if mine:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            launch()
        finally:
            if mine:
                os.environ.pop("OMP_WAIT_POLICY", None)

    wrapper._nnlocal_passive = True
    return wrapper


def _install_passive_openmp() -> None:
    """Make Numba start its thread pool, whenever it does, with idle OpenMP workers that *sleep*.

    Numba's default threading layer here is GNU OpenMP, whose idle workers spin for a while after
    every parallel region; OpenBLAS's do the same after every BLAS call. With two threads each on a
    two-core machine, every switch between a Numba kernel and a BLAS call then waits for the other
    pool's spinning thread to give its core back: an MLP training step took 7.4 ms with two
    threads against 1.7 ms with one. ``OMP_WAIT_POLICY=PASSIVE``, read by OpenMP once, when Numba
    loads it, makes its workers sleep instead (1.6 ms). nnlocal wraps Numba's lazy pool start so
    that the variable is set for that moment only, and only if you have not set it yourself:
    libraries that load their own OpenMP (torch) keep their default.

    Nothing is started here. Importing nnlocal must not start an OpenMP pool: GNU OpenMP is not
    fork-safe, and a ``fork()``-ed child of a process whose pool runs is terminated as soon as it
    enters a parallel region (``multiprocessing`` forks on Linux). No effect if Numba's pool was
    started before nnlocal was imported.
    """
    parallel = importlib.import_module("numba.np.ufunc.parallel")
    if not parallel._is_initialized and not getattr(parallel._launch_threads, "_nnlocal_passive", False):
        parallel._launch_threads = _passive_openmp_launch(parallel._launch_threads)


def add_argument(parser) -> None:
    """Add ``--kernels {numpy,numba}`` to an :mod:`argparse` parser (every demo, ``nnlocal tour``).

    The default is the implementation in force when the parser is built (``NNLOCAL_KERNELS``, else
    ``numba``); the caller applies the choice with ``use(args.kernels)``.
    """
    parser.add_argument("--kernels", choices=IMPLEMENTATIONS, default=current(),
                        help="implementation of every method's equations: 'numba' runs the Numba kernels that "
                             "pay on this machine, 'numpy' only the plain-NumPy reference functions (nothing is "
                             "compiled; slower, same results within float rounding). Default: the "
                             "NNLOCAL_KERNELS environment variable, else numba (here: %(default)s)")


def implementation(package: str, device: str = "cpu"):
    """The module that computes ``package``'s equations for ``device`` under the current switch.

    ``package`` is a method folder (``"nnlocal.methods.deep"``) or a shared piece
    (``"nnlocal.kernels.conv"``). Returns ``<package>.cuda`` for ``device="cuda"``, else
    ``<package>.reference`` under ``use("numpy")`` and ``<package>.cpu`` under ``use("numba")``.
    """
    if device == "cuda":
        _cuda_usable()
        return importlib.import_module(package + ".cuda")
    if device != "cpu":
        check_device(device, "nnlocal.kernels.implementation")
    return importlib.import_module(package + (".reference" if current() == "numpy" else ".cpu"))


def check_device(device, who: str) -> str:
    """Validate a ``device`` argument for the class or function named ``who``.

    Returns ``"cpu"`` or ``"cuda"``. Anything else raises ValueError naming ``who``; ``"cuda"``
    without a usable GPU (or the simulator) raises RuntimeError saying what to install or set, so
    that a class fails at construction rather than at its first step.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{who}: device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        _cuda_usable()
    return device


_NO_CUDA_HELP = (
    "To run on an NVIDIA GPU, install the CUDA driver and the optional extra: `pip install nnlocal[cuda]` "
    "(NVIDIA's numba-cuda package). To run the CUDA kernels without a GPU (slow; for testing), set "
    "NUMBA_ENABLE_CUDASIM=1 in the environment before numba is first imported. Or use device='cpu'."
)


def _cuda_status() -> tuple[bool, str]:
    """(usable, reason): imports numba.cuda (only called when CUDA is asked for)."""
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - a numba build without its CUDA target
        return False, f"numba.cuda cannot be imported ({type(exc).__name__}: {exc})"
    try:
        if cuda.is_available():
            return True, "simulator" if _simulator_active() else "gpu"
    except Exception as exc:  # pragma: no cover - a broken driver install
        return False, f"the CUDA driver failed to initialise ({type(exc).__name__}: {exc})"
    err = cuda.cuda_error() if hasattr(cuda, "cuda_error") else None
    reason = " ".join(str(err).split()).rstrip(".:") if err else "no CUDA-capable GPU was found"
    return False, reason


def _simulator_active() -> bool:
    import numba

    return bool(numba.config.ENABLE_CUDASIM)


def cuda_available() -> bool:
    """True when ``device="cuda"`` would work here (a usable GPU, or the simulator)."""
    return _cuda_status()[0]


@functools.lru_cache(maxsize=None)   # a success is remembered; a failure raises and is not cached
def _cuda_usable() -> str:
    ok, reason = _cuda_status()
    if not ok:
        hint = ""
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and not _simulator_active():
            hint = (" NUMBA_ENABLE_CUDASIM=1 is set, but only after numba was imported, so the simulator is "
                    "not active; set it before starting Python.")
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable here: {reason}.{hint} "
                           + _NO_CUDA_HELP)
    return reason


_install_passive_openmp()      # before Numba can load OpenMP: see its docstring (starts nothing)
