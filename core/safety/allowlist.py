"""What a model file from a stranger may name: an explicit allowlist of globals, never a denylist.

A pickle names every class and function it needs as ``module.name``, and the unpickler imports
and *calls* them. Scanners that look for "dangerous" names lose, because there is always one
more gadget. So ModelShelf lists what it needs and refuses everything else:

* **References** (:func:`allowed_globals`): scikit-learn estimators and the helper classes that
  fitted models hold (trees, losses, binners, KD-trees...), the numpy/scipy types that rebuild
  arrays, and a few builtins. A file may mention these, and build instances of the classes
  without arguments (``cls.__new__(cls)``), which runs no ``__init__``.
* **Calls** (``core.safety.calls``): the much shorter list of globals a file may *call* with
  arguments of its choosing (pickle's ``REDUCE``), each with a check on those arguments: numpy's
  array/scalar rebuilders, ``numpy.dtype``, ``slice``, ``set``, the tree constructor, the random
  generator constructors, ``functools.partial`` only around ``check_array`` with the keyword
  arguments scikit-learn gives it... Nothing here reads files, imports modules, evaluates text or
  gets attributes by name; ``getattr``, ``eval``, ``os.*``, ``subprocess.*``, ``importlib.*``,
  ``operator.*``, ``numpy.memmap`` and numpy's loaders are simply absent.
* **Holding**: what the loaded model may keep afterwards is ``core.safety.policy``'s job (the
  pure numpy ufuncs referenced here, the ``check_array`` partial, each only in its slot).

The lists were made by unpickling every catalog model and pipeline with a recording unpickler
(protocols 0-5, pickle and joblib) and keeping exactly the globals that appeared, plus every
class ``sklearn.utils.all_estimators()`` returns, then grown by what the everyday models of
``tests/test_ordinary_models.py`` need (see docs/safety.md, "What ordinary models load").
"""

from __future__ import annotations

import functools
import importlib
import inspect
from functools import lru_cache
from typing import Any

import numpy as np
import sklearn
from sklearn.utils import all_estimators

from core.errors import FormatError, UnsafeModelError
from core.safety.pure_functions import PURE_REDUCTIONS, PURE_UFUNCS

Global = tuple[str, str]


#: Old module names that pickles of protocol 0-2 use (Python 2 era, numpy 1.x), mapped to today's.
MODULE_ALIASES = {
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
    "numpy.core.multiarray": "numpy._core.multiarray",
    "numpy.core.numeric": "numpy._core.numeric",
    "numpy.core._multiarray_umath": "numpy._core._multiarray_umath",
    # scikit-learn 1.5's Cython losses pickled under the bare module name "_loss".
    "_loss": "sklearn._loss._loss",
}

_BUILTIN_TYPES = ("slice", "complex", "set", "frozenset", "bytes", "bytearray", "object")
_BUILTIN_REFERENCES = ("int", "float", "bool", "str", "list", "dict", "tuple", "range")

#: Helper classes real fitted models pickle, found by unpickling the catalog with a recorder.
_SKLEARN_HELPERS: tuple[Global, ...] = (
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.utils._bunch", "Bunch"),
    ("sklearn.compose._column_transformer", "_RemainderColsList"),
    ("sklearn.compose._column_transformer", "make_column_selector"),
    ("sklearn.neighbors._kd_tree", "KDTree"),
    ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "BallTree"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.metrics._dist_metrics", "newObj"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    # CalibratedClassifierCV's fitted members and their calibrators (sigmoid, temperature;
    # isotonic is IsotonicRegression, an estimator).
    ("sklearn.calibration", "_CalibratedClassifier"),
    ("sklearn.calibration", "_SigmoidCalibration"),
    ("sklearn.calibration", "_TemperatureScaling"),
    # MLPClassifier/MLPRegressor keep their solver's state.
    ("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer"),
    ("sklearn.neural_network._stochastic_optimizers", "SGDOptimizer"),
    # A fitted GridSearchCV/RandomizedSearchCV: the splitter check_cv made and the default scorer.
    ("sklearn.model_selection._split", "KFold"),
    ("sklearn.model_selection._split", "StratifiedKFold"),
    ("sklearn.metrics._scorer", "_PassthroughScorer"),
    # SelectKBest/SelectPercentile's score functions: referenced, only ever called by fit.
    ("sklearn.feature_selection._univariate_selection", "f_classif"),
    ("sklearn.feature_selection._univariate_selection", "f_regression"),
    ("sklearn.feature_selection._univariate_selection", "chi2"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_classif"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_regression"),
    # Categorical HistGradientBoosting holds FunctionTransformer(partial(check_array, ...)); the
    # partial is checked on creation and on every state change (see PARTIAL_FUNCTIONS).
    ("sklearn.utils.validation", "check_array"),
    ("functools", "partial"),
)

#: Modules whose classes of one family are all allowed (discovered by inspection, not by name).
_SKLEARN_FAMILIES = (
    "sklearn._loss.link",
    "sklearn._loss.loss",
    "sklearn.metrics._dist_metrics",
    "sklearn.gaussian_process.kernels",
)

#: Family members a file may never build: a Python-function distance calls the function in its
#: state (any global the file names) with every pair of rows; scikit-learn never pickles one itself.
_NOT_FROM_FAMILIES = ("PyFuncDistance",)

_NUMPY_REFERENCES: tuple[Global, ...] = (
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._generator", "Generator"),
    # GridSearchCV's cv_results_ holds masked arrays (numpy 1.x pickled them under numpy.ma.core).
    ("numpy.ma", "MaskedArray"),
    ("numpy.ma.core", "MaskedArray"),
    ("numpy.ma.core", "_mareconstruct"),
)

_SCIPY_SPARSE = ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array")


def _import(module: str) -> Any:
    return importlib.import_module(MODULE_ALIASES.get(module, module))


def _family(module_name: str) -> list[Global]:
    """Every class defined in a module (and Cython's ``__pyx_unpickle_*`` helpers next to them)."""
    module = importlib.import_module(module_name)
    found = []
    for name, obj in vars(module).items():
        if inspect.isclass(obj) and obj.__module__ == module_name:
            found.append((module_name, name))
    return found


_MISSING: set[Global] = set()


@lru_cache(maxsize=1)
def _catalogue() -> dict[Global, Any]:
    """``(module, name) -> object`` for everything a file may mention (built once, on first use)."""
    pairs: list[Global] = [("builtins", n) for n in (*_BUILTIN_TYPES, *_BUILTIN_REFERENCES)]
    pairs += [("collections", "OrderedDict"), ("copyreg", "_reconstructor"), ("_codecs", "encode")]
    pairs += [(cls.__module__, cls.__qualname__) for _name, cls in all_estimators()]
    pairs += list(_SKLEARN_HELPERS)
    for family in _SKLEARN_FAMILIES:
        pairs += [pair for pair in _family(family) if not pair[1].startswith(_NOT_FROM_FAMILIES)]
    loss_module = importlib.import_module("sklearn._loss._loss")
    pairs += [("sklearn._loss._loss", n) for n in vars(loss_module) if n.startswith(("Cy", "__pyx_unpickle_Cy"))]
    pairs += list(_NUMPY_REFERENCES)
    # Pure functions a FunctionTransformer may hold (referenced, never called while loading;
    # core.safety.policy decides which slot may hold which).
    pairs += [("numpy", n) for n in (*PURE_UFUNCS, *PURE_REDUCTIONS)]
    # numpy scalar types appear as dtype= parameters (``OneHotEncoder(dtype=np.float64)``).
    pairs += [(t.__module__, t.__name__) for t in set(np.sctypeDict.values()) if t.__module__ == "numpy"]
    sparse = importlib.import_module("scipy.sparse")
    pairs += [(getattr(sparse, n).__module__, n) for n in _SCIPY_SPARSE if hasattr(sparse, n)]
    resolved: dict[Global, Any] = {}
    for module, name in pairs:
        try:
            resolved[(module, name)] = getattr(_import(module), name)
        except (ImportError, AttributeError):
            _MISSING.add((module, name))  # a helper this scikit-learn release does not have
    for old, new in MODULE_ALIASES.items():
        for (module, name), obj in list(resolved.items()):
            if module == new:
                resolved[(old, name)] = obj
    return resolved


def allowed_globals() -> frozenset[Global]:
    """The ``(module, name)`` pairs a pickle may mention: an O(1) membership test."""
    return frozenset(_catalogue())


def allowed_type_names() -> frozenset[str]:
    """The same allowlist as ``module.name`` strings: what skops reports as untrusted types."""
    return frozenset(f"{m}.{n}" for m, n in _catalogue())


#: On the allowlist for pickles (which rebuild arrays and bytes through them) but never a type a
#: skops file needs: skops writes arrays and bytes its own way, so naming these is an attack.
_SKOPS_NEVER = frozenset({"numpy.memmap", *(f"builtins.{n}" for n in (*_BUILTIN_TYPES, *_BUILTIN_REFERENCES))})


def skops_type_names() -> frozenset[str]:
    """What a skops file may ask to be trusted: the allowlist less what only pickles need."""
    return allowed_type_names() - _SKOPS_NEVER


def missing_message(module: str, name: str) -> str | None:
    """Why a global on the list cannot be had: this scikit-learn release no longer has it."""
    if (module, name) not in _MISSING:
        return None
    return (
        f"The file needs {module}.{name}, which scikit-learn {sklearn.__version__} no longer has: it was saved "
        "by an older release whose objects this one cannot rebuild; re-save it with this release"
    )


def resolve(module: str, name: str) -> Any:
    """The object a pickle's global stands for, or UnsafeModelError naming it."""
    obj = _catalogue().get((module, name))
    if obj is None and (missing := missing_message(module, name)):
        raise FormatError(missing)
    if obj is None:
        raise UnsafeModelError(
            f"{module}.{name} is not allowed: the file asks to load a global outside ModelShelf's "
            "allowlist of scikit-learn, numpy and scipy types, so it was not loaded"
        )
    return obj


def is_allowed_object(obj: Any) -> bool:
    """Is ``obj`` one of the allowlisted globals themselves (a class or function, by identity)?"""
    return id(obj) in _allowed_ids()


@lru_cache(maxsize=1)
def _allowed_ids() -> frozenset[int]:
    return frozenset(id(v) for v in _catalogue().values())


def may_create(cls: type) -> bool:
    """May the unpickler make ``cls.__new__(cls)`` with no arguments? Not for classes built only by a checked call."""
    return cls is not functools.partial


class JoblibMemmap:
    """Stands for ``numpy.memmap`` in a joblib file: the class joblib records for an array saved
    from a memmap, read back as a plain array. Only that array wrapper may name it; numpy.memmap
    itself opens and writes files, so it is not on the allowlist."""

    stands_for = "numpy.memmap"


def name_of(obj: Any) -> str:
    """``module.name`` of a global for messages (falls back to the type name)."""
    for (module, name), value in _catalogue().items():
        if value is obj and module not in MODULE_ALIASES:
            return f"{module}.{name}"
    return getattr(obj, "__qualname__", type(obj).__name__)


# Keep the names of things people might expect here and that are deliberately absent greppable.
NEVER_ALLOWED = (
    "builtins.eval",
    "builtins.exec",
    "builtins.getattr",
    "builtins.__import__",
    "os.system",
    "posix.system",
    "subprocess.Popen",
    "importlib.import_module",
    "operator.attrgetter",
    "numpy.load",
    "numpy.loadtxt",
    "numpy.fromfile",
    "numpy.frombuffer",
)
