"""One independent random generator per patient, derived from the root seed and the index.

Patient i's generator depends only on (root seed, i), never on the order, chunking or worker
that runs it, so a cohort is identical however it is split and any patient can be re-run
alone.  A run without a seed draws a fresh root seed from the operating system entropy and
records it, so that it too can be repeated.
"""

from __future__ import annotations

import zlib
from typing import cast

import numpy as np


def draw_root_seed() -> int:
    """A fresh root seed from OS entropy (128 bits fit a SeedSequence; 63 keep it printable)."""
    entropy = np.random.SeedSequence().entropy  # an int when drawn from the OS
    return int(cast(int, entropy) % (2**63))


def patient_generator(root_seed: int, patient_index: int) -> np.random.Generator:
    """The generator of patient ``patient_index`` under ``root_seed``."""
    sequence = np.random.SeedSequence(entropy=root_seed, spawn_key=(patient_index,))
    return np.random.Generator(np.random.PCG64(sequence))


CLINICAL_STREAM = 1
"""Spawn-key suffix of the clinic's own generator, kept apart from the disease's."""


def clinical_generator(root_seed: int, patient_index: int) -> np.random.Generator:
    """The clinic's generator for patient ``patient_index``: independent of the disease's.

    Keeping what the clinic draws (thresholds, adherence, detection, responses) on its own
    stream means two arms of a comparison share the natural history and the patient's
    traits: common random numbers.
    """
    sequence = np.random.SeedSequence(entropy=root_seed, spawn_key=(patient_index, CLINICAL_STREAM))
    return np.random.Generator(np.random.PCG64(sequence))


def side_stream(rng: np.random.Generator, key: int) -> np.random.Generator:
    """A generator for draws made aside from ``rng``'s sequence, derived from its seed and
    ``key`` (the clinic's chemosensitivity, supportive-care lot, operative deaths, ...).

    Drawing such a trait from ``rng`` itself would shift every later draw (the work-up
    delay, scans and biopsies that decide the stage), so adding a trait or a rule would
    change who is diagnosed when.  A stream keyed below ``rng``'s seed sequence leaves
    ``rng`` untouched and is the same in every arm.  A generator without a seed sequence
    (built from a saved state) has no such key: the draws then come from ``rng``.
    """
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if not isinstance(seq, np.random.SeedSequence):
        return rng
    child = np.random.SeedSequence(
        seq.entropy, spawn_key=(*seq.spawn_key, key), pool_size=seq.pool_size
    )
    return np.random.Generator(type(rng.bit_generator)(child))


UNIT = 2.0**-53
"""Spacing of the doubles in [0, 1) that numpy's ``Generator.random`` returns."""


def name_key(name: str) -> int:
    """A stable integer key for a named draw (CRC-32 of the name: the same on every platform
    and run, unlike ``hash``)."""
    return zlib.crc32(name.encode("utf-8"))


def keyed_uniform(rng: np.random.Generator, stream: int, key: int) -> float:
    """One uniform on [0, 1) fixed by ``rng``'s seed, ``stream`` and ``key``, drawn aside from
    ``rng`` like :func:`side_stream` but without building a generator (a hash of the seed
    sequence: 53 random bits, as ``Generator.random`` uses).

    For per-name traits (a biomarker, a response to a drug): each has a draw of its own, so
    adding a biomarker or a drug for one cancer type moves no draw of any other patient or
    type.  Without a seed sequence (a generator built from a saved state) the draw comes from
    ``rng``."""
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if not isinstance(seq, np.random.SeedSequence):
        return float(rng.random())
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, stream, key),
                                   pool_size=seq.pool_size)
    return float(int(child.generate_state(1, np.uint64)[0]) >> 11) * UNIT
