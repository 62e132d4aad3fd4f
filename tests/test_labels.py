"""Label schemes on hand-made records, and JSON/YAML mapping files."""
from __future__ import annotations

import pytest

from tinyser.corpora import Record, cremad, emodb, iemocap, ravdess, savee
from tinyser.errors import ConfigError, CorpusError
from tinyser.labels import CANONICAL, SCHEMES, apply_scheme, canonical, load_mapping, scheme_classes


def rec(label: str, corpus: str = "emodb", name: str | None = None) -> Record:
    return Record(f"/data/{corpus}/{name or label}.wav", label, "01", corpus)


RECORDS = [rec("anger"), rec("boredom"), rec("happiness"), rec("neutral"),
           rec("calm", "ravdess"), rec("surprised", "ravdess"), rec("fearful", "ravdess"),
           rec("ps", "tess"), rec("exc", "iemocap"), rec("fru", "iemocap"), rec("sad", "cremad")]


def labels(records) -> list[str]:
    return [r.label for r in records]


def test_every_native_label_has_a_canonical_label():
    natives = [*emodb.EMOTIONS.values(), *ravdess.EMOTIONS.values(), *savee.EMOTIONS.values(),
               *cremad.EMOTIONS.values(), *iemocap.LABELS,
               "angry", "disgust", "fear", "happy", "neutral", "ps", "sad"]  # TESS
    assert {canonical(n) for n in natives} <= set(CANONICAL)


@pytest.mark.parametrize("native, expected", [
    ("anger", "angry"), ("happiness", "happy"), ("fear", "fearful"), ("sadness", "sad"),
    ("surprised", "surprise"), ("ps", "surprise"), ("neu", "neutral"), ("exc", "excited"),
    ("fru", "frustrated"), ("boredom", "boredom"), ("Calm", "calm"), ("whisper", "whisper"),
])
def test_canonical(native, expected):
    assert canonical(native) == expected


def test_record_keeps_native_and_canonical():
    r = rec("anger")
    assert (r.native, r.canonical) == ("anger", "angry")


def test_native_scheme_changes_nothing():
    kept, dropped = apply_scheme(RECORDS, "native")
    assert kept == RECORDS and dropped == {}


def test_common6():
    kept, dropped = apply_scheme(RECORDS, "common6")
    assert labels(kept) == ["angry", "happy", "neutral", "neutral", "fearful", "sad"]
    assert dropped == {"boredom": 1, "exc": 1, "fru": 1, "ps": 1, "surprised": 1}
    calm = next(r for r in kept if r.native == "calm")
    assert (calm.label, calm.canonical, calm.corpus) == ("neutral", "calm", "ravdess")


def test_4class():
    kept, dropped = apply_scheme(RECORDS, "4class")
    assert labels(kept) == ["unpleasant", "happy", "neutral", "neutral", "surprise", "unpleasant",
                            "surprise", "unpleasant"]
    assert dropped == {"boredom": 1, "exc": 1, "fru": 1}


def test_valence3():
    kept, dropped = apply_scheme(RECORDS, "valence3")
    assert labels(kept) == ["unpleasant", "pleasant", "neutral", "neutral", "pleasant", "unpleasant",
                            "pleasant", "unpleasant"]
    assert set(dropped) == {"boredom", "exc", "fru"}


def test_canonical_scheme_spells_every_corpus_one_way():
    kept, dropped = apply_scheme(RECORDS, "canonical")
    assert labels(kept) == [canonical(r.label) for r in RECORDS] and dropped == {}
    assert scheme_classes("canonical") == list(CANONICAL)


def test_scheme_classes():
    assert SCHEMES == ("native", "common6", "4class", "valence3", "canonical")
    assert scheme_classes("common6") == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert scheme_classes("4class") == ["neutral", "happy", "surprise", "unpleasant"]
    assert scheme_classes("valence3") == ["pleasant", "unpleasant", "neutral"]
    assert scheme_classes("native") is None and scheme_classes("map.json") is None


def test_unknown_scheme():
    with pytest.raises(ConfigError, match="unknown label scheme 'common7'"):
        apply_scheme(RECORDS, "common7")


def test_json_mapping(tmp_path):
    p = tmp_path / "map.json"
    p.write_text('{"Anger": "negative", "surprise": "positive", "happy": "positive", "boredom": null}')
    kept, dropped = apply_scheme(RECORDS, p)
    assert {(r.native, r.label) for r in kept} == {("anger", "negative"), ("happiness", "positive"),
                                                   ("surprised", "positive"), ("ps", "positive")}
    assert dropped["boredom"] == 1 and dropped["neutral"] == 1 and sum(dropped.values()) == 7


def test_yaml_mapping_by_path_string(tmp_path):
    p = tmp_path / "map.yml"
    p.write_text("# native or canonical keys\nneutral: neutral\ncalm: neutral\nexc: happy\nhap: happy\n")
    kept, dropped = apply_scheme(RECORDS, str(p))
    assert labels(kept) == ["neutral", "neutral", "happy"]
    assert "anger" in dropped


def test_mapping_object():
    kept, _ = apply_scheme(RECORDS, {"sad": "low"})
    assert labels(kept) == ["low"]


def test_load_mapping_normalises_keys(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("' Angry ': negative\nboredom:\n")
    assert load_mapping(p) == {"angry": "negative", "boredom": None}


@pytest.mark.parametrize("name, text, match", [
    ("bad.json", '{"anger": "negative",', "invalid JSON"),
    ("bad.yaml", "anger: [negative\n", "invalid YAML"),
    ("list.yaml", "- anger\n- sad\n", "non-empty object"),
    ("empty.json", "{}", "non-empty object"),
    ("nested.json", '{"anger": {"to": "negative"}}', "not text"),
    ("bool.yaml", "yes: happy\n", "not text"),
])
def test_malformed_mapping(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(CorpusError, match=match) as e:
        apply_scheme(RECORDS, p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(CorpusError, match="cannot read"):
        apply_scheme(RECORDS, tmp_path / "absent.json")
