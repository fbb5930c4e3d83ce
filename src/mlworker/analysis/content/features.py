"""Features of each creative: TF-IDF terms per text field and structured attributes.

Terms are words and bigrams, named ``"<field>: <term>"`` (``title: free shipping``).
Attributes are named ``"<field> [<what>]"`` (``title [word count]``) and ``channel = <name>``,
so a term can never be mistaken for an attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

Kind = Literal["term", "attribute"]

#: Attribute key → (name suffix, whether it is 0/1).
ATTRIBUTES: dict[str, tuple[str, bool]] = {
    "words": ("word count", False),
    "hasNumber": ("has number", True),
    "hasQuestion": ("has question mark", True),
    "hasExclamation": ("has exclamation mark", True),
    "uppercaseShare": ("uppercase share", False),
    "personal": ("addresses the reader", True),
    "hasEmoji": ("has emoji", True),
}
MAX_TERMS = 2000
_MAX_CHANNELS = 30
_UPPERCASE = r"[A-ZÀ-ÖØ-ÞΑ-ΩА-Я]"
_LETTER = r"[^\W\d_]"
_PERSONAL = r"(?i)\b(?:you|your|yours|yourself|you're|youre|you'll|you've)\b"
_EMOJI = "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]"
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix and what each column means.

    Attributes
    ----------
    matrix
        Sparse ``(creatives, features)`` float32 matrix, terms first.
    names
        Display names (``title: free``, ``title [has number]``, ``channel = email``).
    kinds
        ``"term"`` or ``"attribute"`` per column.
    fields
        The text field a column describes, or ``"channel"``.
    labels
        The term, the attribute key (``words``, ``hasNumber``…) or the channel name.
    binary
        Whether a column is presence/absence (terms count as present when non-zero).
    notes
        What a reader should know (empty texts, fields without usable terms).
    """

    matrix: sp.csr_matrix
    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    fields: tuple[str, ...]
    labels: tuple[str, ...]
    binary: npt.NDArray[np.bool_]
    notes: tuple[str, ...]

    @property
    def term_count(self) -> int:
        """Number of term columns."""
        return sum(kind == "term" for kind in self.kinds)


def clean_texts(series: pd.Series) -> pd.Series:
    r"""Texts as plain ``str``: missing becomes ``""``, bytes are decoded, lone surrogates replaced.

    Examples
    --------
    >>> texts = clean_texts(pd.Series(["Free ship\ufffdping", None, b"caf\xe9", "x\udcff"]))
    >>> [text.replace("\ufffd", "?") for text in texts]
    ['Free ship?ping', '', 'caf?', 'x?']
    """
    values = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
    if pd.api.types.is_object_dtype(values.dtype):
        values = values.map(_plain_text, na_action="ignore")
    return values.astype(object).where(values.notna(), "")


def _plain_text(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    # Lone surrogates (from a lossy decode upstream) cannot be encoded into the JSON answer.
    return _SURROGATES.sub("\ufffd", text)


def _min_documents(documents: int) -> int:
    """Count the creatives a term must appear in: 5 from 250 creatives on, fewer below."""
    return int(min(5, max(2, documents // 50)))


def _terms(
    texts: pd.Series, field: str, max_features: int
) -> tuple[sp.csr_matrix | None, list[str]]:
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=_min_documents(len(texts)),
        max_features=max_features,
        dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform(texts.tolist())
    except ValueError:  # empty vocabulary: every document empty, or no term frequent enough
        return None, []
    return sp.csr_matrix(matrix), [str(term) for term in vectorizer.get_feature_names_out()]


def text_attributes(texts: pd.Series) -> pd.DataFrame:
    """Structured attributes of each text (columns are the keys of :data:`ATTRIBUTES`).

    Examples
    --------
    >>> row = text_attributes(pd.Series(["Save 20% today, YOU deserve it!"])).iloc[0]
    >>> row["words"], row["hasNumber"], row["hasExclamation"], row["personal"]
    (np.float32(6.0), np.float32(1.0), np.float32(1.0), np.float32(1.0))
    >>> round(float(row["uppercaseShare"]), 3)
    0.19
    """
    text = texts.astype("string")
    letters = text.str.count(_LETTER).to_numpy(dtype=np.float64)
    upper = text.str.count(_UPPERCASE).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(letters > 0, upper / letters, 0.0)
    frame = pd.DataFrame(
        {
            "words": text.str.count(r"\S+"),
            "hasNumber": text.str.contains(r"\d", regex=True),
            "hasQuestion": text.str.contains("?", regex=False),
            "hasExclamation": text.str.contains("!", regex=False),
            "uppercaseShare": share,
            "personal": text.str.contains(_PERSONAL, regex=True),
            "hasEmoji": text.str.contains(_EMOJI, regex=True),
        },
        index=texts.index,
    )
    return frame.astype(np.float32)


def build_features(
    texts: pd.DataFrame, channels: npt.NDArray[np.object_], *, max_terms: int = MAX_TERMS
) -> FeatureSet:
    """TF-IDF terms of each text field, text attributes and channel indicators.

    Parameters
    ----------
    texts
        One column per text field, one row per creative (cleaned by :func:`clean_texts`).
    channels
        Channel of each creative; one indicator per channel (the 30 most common) when there
        are several.
    max_terms
        Term budget over all fields, split evenly.

    Constant columns are dropped: they cannot explain anything.
    """
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []
    kinds: list[Kind] = []
    fields: list[str] = []
    labels: list[str] = []
    binary: list[bool] = []
    termless: list[str] = []
    per_field = max(1, max_terms // max(1, len(texts.columns)))
    for field in texts.columns:
        matrix, terms = _terms(texts[field], str(field), per_field)
        if matrix is None:
            termless.append(str(field))
            continue
        blocks.append(matrix)
        names.extend(f"{field}: {term}" for term in terms)
        kinds.extend(["term"] * len(terms))
        fields.extend([str(field)] * len(terms))
        labels.extend(terms)
        binary.extend([True] * len(terms))
    dense: list[npt.NDArray[np.float32]] = []
    for field in texts.columns:
        attributes = text_attributes(texts[field])
        for key, (suffix, is_binary) in ATTRIBUTES.items():
            dense.append(attributes[key].to_numpy(dtype=np.float32))
            names.append(f"{field} [{suffix}]")
            kinds.append("attribute")
            fields.append(str(field))
            labels.append(key)
            binary.append(is_binary)
    counts = pd.Series(channels).value_counts(sort=True)
    if len(counts) > 1:
        for channel in counts.index[:_MAX_CHANNELS]:
            dense.append((channels == channel).astype(np.float32))
            names.append(f"channel = {channel}")
            kinds.append("attribute")
            fields.append("channel")
            labels.append(str(channel))
            binary.append(True)
    if dense:
        blocks.append(sp.csr_matrix(np.column_stack(dense)))
    rows = len(texts)
    matrix = (
        sp.hstack(blocks, format="csr", dtype=np.float32)
        if blocks
        else sp.csr_matrix((rows, 0), dtype=np.float32)
    )
    varying = _varying_columns(matrix)
    notes: list[str] = []
    if termless and len(termless) == len(texts.columns):
        notes.append(
            "Every text is empty or too rare to analyse: the model uses structured attributes only."
        )
    elif termless:
        notes.append(
            f"No term of {', '.join(termless)} appears in enough creatives to be analysed: "
            "only its attributes are used."
        )
    keep = np.flatnonzero(varying)
    return FeatureSet(
        matrix=sp.csr_matrix(matrix[:, keep]),
        names=tuple(names[i] for i in keep),
        kinds=tuple(kinds[i] for i in keep),
        fields=tuple(fields[i] for i in keep),
        labels=tuple(labels[i] for i in keep),
        binary=np.asarray(binary, dtype=bool)[keep],
        notes=tuple(notes),
    )


def _varying_columns(matrix: sp.csr_matrix) -> npt.NDArray[np.bool_]:
    if matrix.shape[0] == 0:
        return np.zeros(matrix.shape[1], dtype=bool)
    columns = sp.csc_matrix(matrix)
    low = np.asarray(columns.min(axis=0).todense()).ravel()
    high = np.asarray(columns.max(axis=0).todense()).ravel()
    return np.asarray(high > low, dtype=bool)
