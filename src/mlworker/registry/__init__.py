"""The one model registry's values: models, numbered versions, lifecycle statuses.

Every kind of model (trained estimators, scoring engines, text classifiers) is a
:class:`RegisteredModel` with immutable :class:`ModelVersion` rows; the store enforces at most one
champion per tenant and family, and every lifecycle change writes an audit row.
"""

from mlworker.registry.values import ModelVersion, RegisteredModel, new_model_id

__all__ = ["ModelVersion", "RegisteredModel", "new_model_id"]
