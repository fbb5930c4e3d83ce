r"""Neural collaborative filtering: two embedding towers and an MLP head (seed 003, "Neural CF").

Every customer (``customerId``) and offer (``offerId``) seen in training gets a learned
embedding; a candidate's two embeddings are concatenated and passed through one ReLU hidden layer
and a sigmoid output [1]_:

.. math:: p = \sigma\big(w_2^\top \operatorname{ReLU}(W_1^\top [u; v] + b_1) + b_2\big)

Training is mini-batch SGD on the mean binary cross-entropy plus an L2 penalty on the
embeddings, with seeded shuffles. The dense layers use Glorot/Xavier uniform initialisation
[2]_; each embedding table is the weight of a linear layer over a one-hot input, in which a
single unit is active, so it is initialised as Glorot uniform with fan-in 1 and fan-out
``embeddingDim``. Customers and offers
not seen in training fall back to the zero embedding, so they score from the biases alone and an
untrained model scores 0.5. Attributes other than the two ids are not used.

References
----------
.. [1] X. He, L. Liao, H. Zhang, L. Nie, X. Hu and T.-S. Chua, "Neural collaborative
   filtering", WWW 2017, 173-182.
.. [2] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward
   neural networks", AISTATS 2010, 249-256.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import Field

from mlworker.engines._base import (
    CUSTOMER_ID,
    OFFER_ID,
    EngineConfig,
    Explanation,
    as_outcomes,
    id_codes,
    sigmoid,
)


class NeuralCFConfig(EngineConfig):
    """Neural CF settings.

    ``embeddingDim`` and ``hiddenDim`` default as in the seed's table; the seed gives no
    defaults for the optimiser, so ours are chosen to learn latent structure from a few thousand
    sparse interactions in about a second.

    Parameters
    ----------
    embedding_dim
        ``embeddingDim``: length of each customer and offer embedding.
    hidden_dim
        ``hiddenDim``: units of the ReLU hidden layer.
    learning_rate
        ``learningRate``: SGD step size on the batch-mean loss.
    epochs
        ``epochs``: passes over the interactions.
    batch_size
        ``batchSize``: interactions per SGD step.
    l2
        ``l2``: weight of the per-interaction penalty ``l2/2·(‖u‖² + ‖v‖²)`` on the two
        embeddings it uses. With a handful of interactions per customer the embeddings are what
        overfits; the dense layers are shared by every interaction and are not penalised.
    """

    embedding_dim: int = Field(default=8, ge=1, le=1024)
    hidden_dim: int = Field(default=16, ge=1, le=4096)
    learning_rate: float = Field(default=0.5, gt=0)
    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=1_000_000)
    l2: float = Field(default=0.3, ge=0)


def _glorot_uniform(
    rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]
) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


@dataclass(slots=True)
class _Network:
    """The learned parameters; row ``k`` of a table is the ``k``-th id of its list."""

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    hidden_weights: np.ndarray
    hidden_bias: np.ndarray
    output_weights: np.ndarray
    output_bias: float
    user_rows: dict[str, int] = field(init=False)
    item_rows: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_rows = {user: row for row, user in enumerate(self.user_ids)}
        self.item_rows = {item: row for row, item in enumerate(self.item_ids)}

    def is_finite(self) -> bool:
        """Whether every parameter is a finite number."""
        tables = (self.users, self.items, self.hidden_weights, self.hidden_bias)
        finite_tables = all(bool(np.isfinite(table).all()) for table in tables)
        finite_output = bool(np.isfinite(self.output_weights).all())
        return finite_tables and finite_output and math.isfinite(self.output_bias)

    def forward(
        self, user_rows: np.ndarray, item_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return inputs, hidden pre-activations and logits; row ``-1`` is the zero embedding."""
        dim = self.users.shape[1]
        inputs = np.zeros((len(user_rows), 2 * dim))
        known_user, known_item = user_rows >= 0, item_rows >= 0
        inputs[known_user, :dim] = self.users[user_rows[known_user]]
        inputs[known_item, dim:] = self.items[item_rows[known_item]]
        pre_activation = inputs @ self.hidden_weights + self.hidden_bias
        logits = np.maximum(pre_activation, 0.0) @ self.output_weights + self.output_bias
        return inputs, pre_activation, logits

    def sgd_step(
        self,
        user_rows: np.ndarray,
        item_rows: np.ndarray,
        outcomes: np.ndarray,
        *,
        learning_rate: float,
        l2: float,
    ) -> None:
        """Take one step on the batch-mean penalised cross-entropy (every id is known here)."""
        dim, batch = self.users.shape[1], len(outcomes)
        inputs, pre_activation, logits = self.forward(user_rows, item_rows)
        hidden = np.maximum(pre_activation, 0.0)
        # d(mean BCE)/d(logit) of a sigmoid output is (p - y) / batch.
        output_grad = (sigmoid(logits) - outcomes) / batch
        hidden_grad = np.outer(output_grad, self.output_weights) * (pre_activation > 0.0)
        input_grad = hidden_grad @ self.hidden_weights.T + (l2 / batch) * inputs

        self.output_weights -= learning_rate * (hidden.T @ output_grad)
        self.output_bias -= learning_rate * float(output_grad.sum())
        self.hidden_weights -= learning_rate * (inputs.T @ hidden_grad)
        self.hidden_bias -= learning_rate * hidden_grad.sum(axis=0)
        # Ids repeat within a batch; np.add.at accumulates every occurrence's gradient.
        np.add.at(self.users, user_rows, -learning_rate * input_grad[:, :dim])
        np.add.at(self.items, item_rows, -learning_rate * input_grad[:, dim:])


def _table_rows(codes: np.ndarray, ids: list[str], rows: Mapping[str, int]) -> np.ndarray:
    """Embedding row per candidate from :func:`id_codes` output; ``-1`` for unknown ids."""
    # Code -1 (missing id) picks the appended -1.
    row_of_id = np.asarray([*(rows.get(key, -1) for key in ids), -1], dtype=np.intp)
    table_rows: np.ndarray = row_of_id[codes]
    return table_rows


class Engine:
    """Two-tower neural collaborative filtering scorer.

    Parameters
    ----------
    config
        Validated :class:`NeuralCFConfig`.
    random_state
        Seed of the initialisation and of the shuffles.

    Examples
    --------
    >>> frame = pd.DataFrame({"customerId": ["u1", "u1", "u2", "u2"] * 25,
    ...                       "offerId": ["a", "b", "a", "b"] * 25})
    >>> engine = Engine(NeuralCFConfig()).fit(frame, [1, 0, 0, 1] * 25)
    >>> scores = engine.score(pd.DataFrame({"customerId": ["u1", "u1", "u2", "u2"],
    ...                                     "offerId": ["a", "b", "a", "b"]}))
    >>> (scores > 0.5).tolist()
    [True, False, False, True]
    >>> Engine(NeuralCFConfig()).score(pd.DataFrame({"offerId": ["a"]})).tolist()
    [0.5]
    """

    kind: ClassVar[str] = "neural_cf"
    Config: ClassVar[type[EngineConfig]] = NeuralCFConfig

    def __init__(self, config: NeuralCFConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    @property
    def is_trained(self) -> bool:
        """Whether :meth:`fit` or :meth:`load_state` has given the model parameters."""
        return hasattr(self, "network_")

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Learn embeddings and the MLP from scratch by mini-batch SGD.

        Raises
        ------
        ValueError
            No interactions, outcomes not 0/1 or of the wrong length, or a row without a
            ``customerId`` or ``offerId``.
        """
        values = as_outcomes(outcomes, len(interactions))
        if not len(values):
            raise ValueError("neural_cf needs at least one interaction to fit")
        factorised = []
        for column in (CUSTOMER_ID, OFFER_ID):
            codes, ids = id_codes(interactions, column)
            missing = int((codes < 0).sum())
            if missing:
                raise ValueError(f"{missing} interaction rows have no {column}")
            factorised.append((codes, ids))
        (user_rows, user_ids), (item_rows, item_ids) = factorised

        config = self.config
        rng = np.random.default_rng(self.random_state)
        dim, hidden = config.embedding_dim, config.hidden_dim
        network = _Network(
            user_ids=user_ids,
            item_ids=item_ids,
            users=_glorot_uniform(rng, 1, dim, (len(user_ids), dim)),
            items=_glorot_uniform(rng, 1, dim, (len(item_ids), dim)),
            hidden_weights=_glorot_uniform(rng, 2 * dim, hidden, (2 * dim, hidden)),
            hidden_bias=np.zeros(hidden),
            output_weights=_glorot_uniform(rng, hidden, 1, (hidden,)),
            output_bias=0.0,
        )
        for epoch in range(config.epochs):
            order = rng.permutation(len(values))
            # A step size too large overflows; that is reported below, not warned per batch.
            with np.errstate(over="ignore", invalid="ignore"):
                for start in range(0, len(order), config.batch_size):
                    batch = order[start : start + config.batch_size]
                    network.sgd_step(
                        user_rows[batch],
                        item_rows[batch],
                        values[batch],
                        learning_rate=config.learning_rate,
                        l2=config.l2,
                    )
            if not network.is_finite():
                raise ValueError(
                    f"neural_cf training diverged in epoch {epoch + 1} (non-finite parameters); "
                    f"lower learningRate (now {config.learning_rate})"
                )
        self.network_ = network
        return self

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Click propensity per candidate (deterministic; ``rng`` is ignored)."""
        if not self.is_trained:
            return np.full(len(candidates), 0.5)
        network = self.network_
        user_rows = _table_rows(*id_codes(candidates, CUSTOMER_ID), network.user_rows)
        item_rows = _table_rows(*id_codes(candidates, OFFER_ID), network.item_rows)
        return sigmoid(network.forward(user_rows, item_rows)[2])

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Explain each candidate by its score alone: the seed has no details for embeddings."""
        return [Explanation(self.kind, float(score)) for score in self.score(candidates)]

    def state(self) -> dict[str, Any]:
        """Return the seed's ``modelState``: embeddings by id, layer parameters and sizes."""
        if not self.is_trained:
            return {}
        network = self.network_
        return {
            "userEmbeddings": dict(zip(network.user_ids, network.users.tolist(), strict=True)),
            "itemEmbeddings": dict(zip(network.item_ids, network.items.tolist(), strict=True)),
            "hiddenWeights": network.hidden_weights.tolist(),
            "hiddenBias": network.hidden_bias.tolist(),
            "outputWeights": network.output_weights.tolist(),
            "outputBias": float(network.output_bias),
            "embeddingDim": int(network.users.shape[1]),
            "hiddenDim": int(network.hidden_bias.shape[0]),
        }

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Restore parameters written by :meth:`state`.

        The sizes come from the state, not the config: a model keeps scoring with the shape it
        was trained with until it is retrained.

        Raises
        ------
        ValueError
            A field is missing or a shape disagrees with ``embeddingDim``/``hiddenDim``.
        """
        try:
            dim, hidden = int(state["embeddingDim"]), int(state["hiddenDim"])
            users, items = dict(state["userEmbeddings"]), dict(state["itemEmbeddings"])
            network = _Network(
                user_ids=[str(key) for key in users],
                item_ids=[str(key) for key in items],
                users=np.asarray(list(users.values()), dtype=np.float64).reshape(-1, dim),
                items=np.asarray(list(items.values()), dtype=np.float64).reshape(-1, dim),
                hidden_weights=np.asarray(state["hiddenWeights"], dtype=np.float64),
                hidden_bias=np.asarray(state["hiddenBias"], dtype=np.float64),
                output_weights=np.asarray(state["outputWeights"], dtype=np.float64),
                output_bias=float(state["outputBias"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"neural_cf state is malformed: {error!r}") from error
        expected = {
            "userEmbeddings": (len(network.user_ids), dim),
            "itemEmbeddings": (len(network.item_ids), dim),
            "hiddenWeights": (2 * dim, hidden),
            "hiddenBias": (hidden,),
            "outputWeights": (hidden,),
        }
        actual = {
            "userEmbeddings": network.users.shape,
            "itemEmbeddings": network.items.shape,
            "hiddenWeights": network.hidden_weights.shape,
            "hiddenBias": network.hidden_bias.shape,
            "outputWeights": network.output_weights.shape,
        }
        for name, shape in expected.items():
            if actual[name] != shape:
                raise ValueError(f"neural_cf state: {name} has shape {actual[name]}, not {shape}")
        self.network_ = network
        return self
