"""Transcripts sent with a request: SRT, WebVTT (plain, inline word times, voices) and
JSON words; sentences; refusals with fixes; and why there is no transcriber."""

from __future__ import annotations

import json

import pytest

from reelforge.errors import Invalid
from reelforge.media.transcript import make_transcriber, parse_transcript

SRT = """1
00:00:01,000 --> 00:00:03,000
Here is the thing nobody tells you.

2
00:00:03,500 --> 00:00:05,000
Hire for slope!
"""

VTT_INLINE = """WEBVTT

00:00:01.000 --> 00:00:02.500
<v Host>Hello <00:00:01.400>big <00:00:01.900>world.

00:00:02.500 --> 00:00:04.000
<v Guest>Why <00:00:03.000>not?
"""


def test_srt_cues_are_spread_over_their_words() -> None:
    tr = parse_transcript(SRT)
    assert tr.timed == "cue"
    assert [w.text for w in tr.words][:3] == ["Here", "is", "the"]
    assert tr.words[0].start == pytest.approx(1.0) and tr.words[6].end == pytest.approx(3.0)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(tr.words, tr.words[1:]))
    assert [s.text for s in tr.sentences] == ["Here is the thing nobody tells you.",
                                              "Hire for slope!"]
    assert tr.sentences[1].start == pytest.approx(3.5)


def test_vtt_inline_timestamps_and_voices() -> None:
    tr = parse_transcript(VTT_INLINE)
    assert tr.timed == "word"
    assert [(w.text, round(w.start, 2), w.speaker) for w in tr.words] == [
        ("Hello", 1.0, "Host"), ("big", 1.4, "Host"), ("world.", 1.9, "Host"),
        ("Why", 2.5, "Guest"), ("not?", 3.0, "Guest")]
    assert tr.words[2].end == pytest.approx(2.5)


def test_json_words_segments_and_milliseconds() -> None:
    words = [{"word": " Hello", "start": 0.5, "end": 0.9}, {"text": "there.", "start": 1.0,
                                                             "end": 1.4, "speaker": "A"}]
    for payload in (words, {"words": words}, {"segments": [{"words": words}]},
                    json.dumps(words)):
        tr = parse_transcript(payload)
        assert [w.text for w in tr.words] == ["Hello", "there."]
        assert tr.words[1].speaker == "A"
    ms = parse_transcript([{"word": "hi", "start_ms": 1500, "end_ms": 1800}])
    assert ms.words[0].start == pytest.approx(1.5)
    seg = parse_transcript({"segments": [{"start": 0, "end": 2, "text": "two words"}]})
    assert seg.timed == "cue" and len(seg.words) == 2


@pytest.mark.parametrize("bad, says", [
    ("just some text", "not SRT"),
    ("[{\"word\": \"x\"}]", "'start'"),
    ("[{\"word\": \"x\", \"start\": 2, \"end\": 1}]", "ends before"),
    ("{\"nothing\": 1}", "'words' or 'segments'"),
    ("{broken json", "does not parse"),
    ("WEBVTT\n\nno cues here", "no cues"),
    ("", "non-empty"),
])
def test_bad_transcripts_are_refused_with_a_fix(bad: str, says: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_transcript(bad)
    assert says in err.value.message
    assert err.value.fix and err.value.extra.get("field") == "transcript"


def test_no_transcriber_says_why() -> None:
    t, why = make_transcriber("none", "small", True)
    assert t is None and "turned off" in why
    t, why = make_transcriber("whisperx", "small", True)
    assert t is None and "unknown transcriber" in why
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        t, why = make_transcriber("auto", "small", True)
        assert t is None and "not installed" in why
        return
    # installed, but the model is neither a folder nor cached and downloads are off
    t, why = make_transcriber("auto", "no-such-model-xyz", False)
    assert t is None and "whisper_download is off" in why
    t, why = make_transcriber("faster-whisper", "small", True)
    assert t is not None and t.name == "faster-whisper" and why == ""
