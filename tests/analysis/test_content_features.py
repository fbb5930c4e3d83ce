from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.content.features import build_features, clean_texts, text_attributes


def _texts(titles: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"title": clean_texts(pd.Series(titles))})


def test_terms_are_words_and_bigrams_named_by_field() -> None:
    titles = ["free shipping today"] * 6 + ["new arrivals today"] * 6 + ["rare word"]
    features = build_features(_texts(titles), np.array(["email"] * 13, dtype=object))
    names = set(features.names)
    assert {"title: free", "title: free shipping", "title: today", "title: new arrivals"} <= names
    # "rare" appears once, below the minimum document frequency.
    assert "title: rare" not in names
    assert features.term_count == sum(kind == "term" for kind in features.kinds)
    column = features.names.index("title: free shipping")
    assert features.kinds[column] == "term" and features.labels[column] == "free shipping"
    present = features.matrix[:, column].toarray().ravel() > 0
    assert present.tolist() == [True] * 6 + [False] * 7


def test_attributes_of_worked_strings() -> None:
    frame = text_attributes(pd.Series(["Save 20% today!", "Are YOU ready?", "", "hello 🎉 world"]))
    assert frame["words"].tolist() == [3, 3, 0, 3]
    assert frame["hasNumber"].tolist() == [1, 0, 0, 0]
    assert frame["hasExclamation"].tolist() == [1, 0, 0, 0]
    assert frame["hasQuestion"].tolist() == [0, 1, 0, 0]
    assert frame["personal"].tolist() == [0, 1, 0, 0]
    assert frame["hasEmoji"].tolist() == [0, 0, 0, 1]
    assert frame["uppercaseShare"].tolist() == pytest.approx([1 / 9, 4 / 11, 0.0, 0.0], rel=1e-6)


def test_constant_columns_are_dropped_and_channels_become_indicators() -> None:
    titles = ["free gift", "new gift", "free gift", "new gift", "free gift", "new gift"]
    channels = np.array(["email", "push", "email", "push", "email", "sms"], dtype=object)
    features = build_features(_texts(titles), channels)
    assert "title: gift" not in features.names  # in every title
    assert "title [word count]" not in features.names  # always 2
    assert {"channel = email", "channel = push", "channel = sms"} <= set(features.names)
    email = features.names.index("channel = email")
    assert features.fields[email] == "channel" and features.binary[email]


def test_single_channel_has_no_channel_indicator() -> None:
    titles = ["free gift", "new gift!"] * 4
    features = build_features(_texts(titles), np.array(["email"] * 8, dtype=object))
    assert not any(name.startswith("channel") for name in features.names)


def test_all_empty_texts_leave_attributes_only_with_a_note() -> None:
    frame = pd.DataFrame({"title": clean_texts(pd.Series([None, "", None, ""] * 3))})
    features = build_features(frame, np.array(["email", "push"] * 6, dtype=object))
    assert features.term_count == 0
    assert features.names == ("channel = email", "channel = push")
    assert any("structured attributes only" in note for note in features.notes)


def test_replacement_characters_and_odd_values_do_not_break_features() -> None:
    raw = pd.Series(
        ["Fr\ufffde gift \ufffd\ufffd", b"caf\xe9 gift", "x\udcff gift", 42, None, "gift card"] * 3,
        dtype=object,
    )
    texts = clean_texts(raw)
    assert all(isinstance(text, str) for text in texts)
    assert not any("\udcff" in text for text in texts)
    features = build_features(pd.DataFrame({"body": texts}), np.array(["a"] * 18, dtype=object))
    assert "body: gift" in features.names
    assert all("\ufffd" not in name for name in features.names)
    for name in features.names:
        name.encode("utf-8")
