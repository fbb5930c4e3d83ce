"""Algorithm models in the metadata store: registry rows, live engine states, promotions.

An algorithm model is a ``mlw_models`` row of kind ``algorithm_model`` plus one
``mlw_engine_states`` row holding its live learned state and that state's ``revision``.
"""

from mlworker.store.algorithm_models._rows import ENTITY_TYPE, LiveState
from mlworker.store.algorithm_models.models import UPDATABLE, AlgorithmModelRepository
from mlworker.store.algorithm_models.promotions import PromotionRepository
from mlworker.store.algorithm_models.states import EngineStateRepository, StateLock

__all__ = [
    "ENTITY_TYPE",
    "UPDATABLE",
    "AlgorithmModelRepository",
    "EngineStateRepository",
    "LiveState",
    "PromotionRepository",
    "StateLock",
]
