"""speaker: a tone for the mesh state (docs/kairos.md §8): frequency = 440 + 440·x Hz,
volume = G, x = (1 + Re Ψ)/2.

Each firing writes a WAV (16-bit mono, 22050 Hz, ``seconds`` long, default
0.5; 5 ms fades so it does not click) into ``sound_dir`` as
``<rule>-<hash>.wav`` (replaced atomically, so a player still reading the
previous one is not disturbed) and plays it with ``aplay`` in the background
when ``aplay`` is installed and ``play`` is true (default).  Without a
player the file is still written and "no_player" is counted; when
``MAX_PLAYING`` players are still running, the new one is skipped ("busy").
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from becomingone.outputs import Adapter, mapping, param_bool, param_num

RATE = 22050
FADE_S = 0.005
MAX_PLAYING = 2


def tone(freq: float, volume: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """int16 samples of a sine with peak ``volume``·32767 and short fades."""
    n = max(1, round(seconds * rate))
    k = np.arange(n)
    y = np.sin(2 * np.pi * freq * k / rate) * (max(0.0, min(1.0, volume)) * 32767)
    f = min(n // 2, round(FADE_S * rate))
    if f > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f)
        y[:f] *= ramp
        y[n - f:] *= ramp[::-1]
    return np.round(y).astype("<i2")


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    """Write mono 16-bit ``samples`` to ``path`` atomically (tmp + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    os.replace(tmp, path)


def wav_name(rule_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", rule_name).strip("-")[:48] or "rule"
    return f"{slug}-{hashlib.sha1(rule_name.encode()).hexdigest()[:8]}.wav"


class SpeakerAdapter(Adapter):
    name = "speaker"
    PARAMS = {"seconds": 0.5, "play": True}

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.players: list[subprocess.Popen[bytes]] = []
        self.last_file: Path | None = None
        self.last_tone: tuple[float, float] | None = None

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = super().validate(params)
        p["seconds"] = param_num(p, "seconds", 0.01, 10.0)
        param_bool(p, "play")
        return p

    def _reap(self) -> None:
        self.players = [p for p in self.players if p.poll() is None]

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        try:
            psi = complex(state.get("psi") or 0)
        except (TypeError, ValueError):
            psi = 0j
        freq, vol = mapping.speaker(psi, state.get("G") or 0.0)
        d = Path(self.ctx.sound_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / wav_name(rule_name)
        write_wav(path, tone(freq, vol, params["seconds"]))
        self.last_file, self.last_tone = path, (freq, vol)
        if params["play"]:
            self._play(path)
        self.count("sent")

    def _play(self, path: Path) -> None:
        player = shutil.which("aplay")
        if player is None:
            self.count("no_player")
            return
        self._reap()
        if len(self.players) >= MAX_PLAYING:
            self.count("busy")
            return
        self.players.append(subprocess.Popen(
            [player, "-q", str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))

    def close(self) -> None:
        for p in self.players:
            if p.poll() is None:
                p.terminate()
        for p in self.players:
            try:
                p.wait(1.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(1.0)
        self.players = []
