"""The prompt parser: deterministic, documented, and what its vocabulary promises."""

from __future__ import annotations

import json

import pytest

from reelforge.core.options import normalize_options
from reelforge.errors import Invalid
from reelforge.media.motion import MOVES
from reelforge.media.prompt import (RELIGHTS, RESTYLES, VOCABULARY, WEATHERS, names_move,
                                    parse_prompt)


@pytest.mark.parametrize("prompt,expected", [
    ("warm cozy evening", "warm"), ("cool blue light", "cool"),
    ("golden hour glow on her face", "golden_hour"), ("a sunset over the bay", "golden_hour"),
    ("moonlit night street", "night"), ("moody, low key portrait", "moody"),
    ("warm golden hour light", "golden_hour"),  # the more specific entry wins
    ("a person walking", None),
])
def test_relight_words(prompt: str, expected: str | None) -> None:
    assert parse_prompt(prompt).relight == expected


@pytest.mark.parametrize("prompt,expected", [
    ("turn it into a cartoon", "cartoon"), ("Studio Ghibli anime style", "cartoon"),
    ("pencil sketch", "sketch"), ("a dreamy watercolor painting", "watercolor"),
    ("thick oil painting, impasto", "oil_paint"), ("film noir, black and white", "noir"),
    ("comic book pop art", "comic"), ("something else entirely", None),
])
def test_restyle_words(prompt: str, expected: str | None) -> None:
    assert parse_prompt(prompt).restyle == expected


def test_weather_collects_every_effect_and_whole_words_only() -> None:
    assert parse_prompt("a rainy street in thick fog").weather == ("rain", "fog")
    assert parse_prompt("snowfall at night").weather == ("snow",)
    assert parse_prompt("a brain scan, trained eye").weather == ()  # no "rain" inside words


def test_background_colour_placement_size_transition() -> None:
    p = parse_prompt("replace the background with a solid white backdrop")
    assert p.background == "color" and p.colour == (245, 245, 245)
    assert parse_prompt("blur the background").background == "blur"
    assert parse_prompt("a blue gradient").background == "gradient"
    assert parse_prompt("put the logo small in the top right corner").placement == "top_right"
    assert parse_prompt("a huge balloon in the sky").placement == "top"
    assert parse_prompt("a tiny cat").size < parse_prompt("a cat").size < parse_prompt(
        "a big cat").size
    assert parse_prompt("photos with slide transitions").transition == "slide"
    assert parse_prompt("dissolve between shots").transition == "crossfade"


def test_camera_words_and_determinism() -> None:
    assert parse_prompt("slowly pan left").move.kind == "pan_left"
    assert names_move("tilt up to the sky") and not names_move("a red car")
    for prompt in ("", "rain", "zoom in quickly, comic style"):
        assert parse_prompt(prompt, "vintage", 3) == parse_prompt(prompt, "vintage", 3)
    p = parse_prompt("zoom in quickly with comic style and rain")
    assert p.words == {"camera": "zoom_in", "intensity": p.move.intensity,
                       "restyle": "comic", "weather": ["rain"]}


def test_vocabulary_is_published_and_complete() -> None:
    json.dumps(VOCABULARY)  # it goes out over HTTP as it is
    assert set(VOCABULARY["camera"]) == set(MOVES)
    assert set(VOCABULARY["relight"]) == set(RELIGHTS)
    assert set(VOCABULARY["restyle"]) == set(RESTYLES)
    assert set(VOCABULARY["weather"]) == set(WEATHERS)
    assert VOCABULARY["rules"]
    # every phrase listed really selects its entry on its own
    for kind in ("relight", "restyle", "background", "transition"):
        for name, phrases in VOCABULARY[kind].items():
            for phrase in phrases:
                assert getattr(parse_prompt(phrase), kind) == name, (kind, phrase)


def test_mode_options_are_validated_with_fixes() -> None:
    reel = normalize_options("reel", {"seconds_per_image": "2.5", "image_count": "4",
                                      "beat_sync": "false", "transition": "Wipe"})
    assert (reel["seconds_per_image"], reel["image_count"], reel["beat_sync"],
            reel["transition"]) == (2.5, 4, False, "wipe")
    assert normalize_options("reel", {})["duration"] == 15.0
    audio = normalize_options("image_audio_to_video", {"audio_reactive": "pulse",
                                                       "audio_seconds": "12.5"})
    assert audio["max_duration"] == 60.0 and audio["audio_seconds"] == 12.5
    v2v = normalize_options("video_to_video", {"transform_style": "relight",
                                               "relight": "golden hour", "duration": 10,
                                               "quality": "1080p"})
    assert (v2v["relight"], v2v["aspect_ratio"], v2v["fps"], v2v["style"]) == (
        "golden_hour", "source", "source", "auto")
    assert normalize_options("extend", {"seconds": 3})["duration"] == 3.0
    for mode, bad in (("reel", {"duration": 61}), ("reel", {"duration": 5,
                                                           "seconds_per_image": 2}),
                      ("image_audio_to_video", {"audio_reactive": "disco"}),
                      ("video_to_video", {"restyle": "cubism"}),
                      ("video_to_video", {"background_color": "plaid"}),
                      ("extend", {"duration": 21}), ("image_to_video", {"letterbox": "maybe"}),
                      ("image_to_video", {"duration": 10, "quality": "1080p"})):
        with pytest.raises(Invalid) as err:
            normalize_options(mode, bad)
        assert err.value.fix
