"""Tags on entries (a review's decisions): kept in the sidecar, listed by tag, and never a
change to what a lookup returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CountingBackend
from nbimgprep import NotInCache, Processor, ResultStore
from nbimgprep.errors import TagError
from test_store import put


def test_tags_are_added_removed_and_listed_by(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    a, b, c = put(store, 1), put(store, 2), put(store, 3)
    assert store.tag(a, "rejected", "flagged").tags == ("flagged", "rejected")
    store.tag(b, "accepted")
    store.tag(b, "accepted")  # twice is once
    assert store.get(b).tags == ("accepted",)  # type: ignore[union-attr]
    assert [e.key for e in store.entries(tag="rejected")] == [a]
    assert [e.key for e in store.entries(tag="accepted", op="upscale")] == [b]
    assert store.entries(tag="accepted", op="face_detail") == []
    assert store.untag(a, "rejected", "never-there").tags == ("flagged",)
    assert store.entries(tag="rejected") == []
    assert store.get(c).tags == ()  # type: ignore[union-attr]


def test_tags_live_in_the_sidecar_and_survive_a_rebuild(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 4)
    store.tag(key, "accepted")
    sidecar = json.loads((tmp_path / "entries" / key[:2] / f"{key}.json").read_text())
    assert sidecar["tags"] == ["accepted"]
    assert store.rebuild_index() == 1
    assert store.get(key).tags == ("accepted",)  # type: ignore[union-attr]


def test_a_tag_never_changes_what_a_lookup_returns(tmp_path: Path, testdata: Path) -> None:
    backend = CountingBackend()
    proc = Processor(backend, cache_dir=tmp_path / "cache")
    first = proc.run_sync("upscale", testdata / "chelsea.png")
    proc.store.tag(first.key, "rejected")
    again = proc.run_sync("upscale", testdata / "chelsea.png")
    assert again.cache_hit and again.path == first.path and backend.calls == 1


@pytest.mark.parametrize("bad", ["", "  padded ", "x" * 65, 7])
def test_a_bad_tag_is_a_clear_error(tmp_path: Path, bad: object) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 5)
    with pytest.raises(TagError, match="a tag is a non-empty string"):
        store.tag(key, bad)  # type: ignore[arg-type]


def test_tagging_an_unknown_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotInCache):
        ResultStore(tmp_path).tag("ab" * 32, "accepted")
