"""The model file: one zip holding everything a model needs, in safe formats.

``manifest.json`` (algorithm, target, classes, column plan, parameters, library versions),
``preprocessor.skops`` and, for scikit-learn estimators, ``estimator.skops`` (skops: a format
that rebuilds only allow-listed types, never arbitrary code); XGBoost and LightGBM boosters in
their own JSON / text formats; the held-out rows (``holdout.parquet``) and the evaluation report
computed on them at training time (``evaluation.json``). Nothing in it is ever unpickled.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd
import skops.io as sio

from mlworker.errors import ArtifactCorrupt
from mlworker.serialization import json_safe
from mlworker.training.algorithms import ALGORITHMS, Task
from mlworker.training.features import ColumnPlan
from mlworker.training.model import TrainedModel
from mlworker.training.native import NativeBooster, export_booster
from mlworker.training.target import Target

FORMAT = "mlworker-model"
FORMAT_VERSION = 1
#: Types a saved pipeline may contain beyond those skops trusts by itself; anything else in a
#: file means it is not ours. Exact names outside scikit-learn: a prefix such as ``numpy.``
#: would also admit functions that run code.
_TRUSTED_PREFIXES = ("sklearn.",)
_TRUSTED_TYPES = frozenset({"numpy.dtype", "mlworker.training.features.FeaturePreparer"})
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "xgboost-cpu", "xgboost", "lightgbm", "skops")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model file depends on."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class ModelFile:
    """A loaded model file."""

    model: TrainedModel
    manifest: dict[str, Any]
    evaluation: dict[str, Any] | None
    holdout: pd.DataFrame | None


def dump(
    model: TrainedModel,
    *,
    holdout: pd.DataFrame | None = None,
    evaluation: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> bytes:
    """Serialise ``model`` (and its held-out rows and evaluation) into one zip."""
    native = ALGORITHMS[model.algorithm].native_format
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algorithm": model.algorithm,
        "task": model.task.value,
        "target": model.target.name,
        "classes": list(model.target.classes) if model.target.classes is not None else None,
        "plan": [column.__dict__ for column in model.plan],
        "params": model.params,
        "extra": model.extra,
        "native": native,
        "libraries": library_versions(),
        "metadata": metadata or {},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(json_safe(manifest), sort_keys=True))
        archive.writestr("preprocessor.skops", sio.dumps(model.preprocessor))
        if native is not None:
            archive.writestr(f"estimator.{native}", export_booster(native, model.estimator))
        else:
            archive.writestr("estimator.skops", sio.dumps(model.estimator))
        if holdout is not None:
            archive.writestr("holdout.parquet", _parquet(holdout))
        if evaluation is not None:
            archive.writestr("evaluation.json", json.dumps(json_safe(evaluation)))
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # Mixed-type object columns (a number among strings) are stored as text.
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = safe[column].map(
                lambda v: v if v is None or isinstance(v, str) else str(v)
            )
    safe.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _load_skops(data: bytes, member: str) -> Any:
    untrusted = sio.get_untrusted_types(data=data)
    foreign = [
        name
        for name in untrusted
        if name not in _TRUSTED_TYPES and not name.startswith(_TRUSTED_PREFIXES)
    ]
    if foreign:
        raise ArtifactCorrupt(f"{member} holds types a model file never contains: {foreign[:3]}")
    return sio.loads(data, trusted=untrusted)


def load(data: bytes, *, with_holdout: bool = True) -> ModelFile:
    """Rebuild a model from :func:`dump`'s bytes (already checksum-verified by the caller)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        manifest = json.loads(archive.read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise ArtifactCorrupt("not an ML Worker model file")
        task = Task(manifest["task"])
        classes = tuple(manifest["classes"]) if manifest["classes"] is not None else None
        target = Target(manifest["target"], task, classes)
        preprocessor = _load_skops(archive.read("preprocessor.skops"), "preprocessor.skops")
        native = manifest.get("native")
        if native:
            estimator: Any = NativeBooster(
                native,
                archive.read(f"estimator.{native}"),
                task=task,
                n_classes=len(classes) if classes else None,
            )
        else:
            estimator = _load_skops(archive.read("estimator.skops"), "estimator.skops")
        names = set(archive.namelist())
        evaluation = (
            json.loads(archive.read("evaluation.json")) if "evaluation.json" in names else None
        )
        holdout = None
        if with_holdout and "holdout.parquet" in names:
            holdout = pd.read_parquet(io.BytesIO(archive.read("holdout.parquet")))
        model = TrainedModel(
            algorithm=manifest["algorithm"],
            target=target,
            plan=tuple(ColumnPlan(**column) for column in manifest["plan"]),
            params=manifest["params"],
            preprocessor=preprocessor,
            estimator=estimator,
            extra=manifest.get("extra", {}),
        )
    except ArtifactCorrupt:
        raise
    except Exception as exc:  # a damaged member fails in whichever library reads it
        raise ArtifactCorrupt(f"model file is damaged: {type(exc).__name__}: {exc}") from exc
    return ModelFile(model=model, manifest=manifest, evaluation=evaluation, holdout=holdout)
