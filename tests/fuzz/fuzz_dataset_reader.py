# SPDX-License-Identifier: MIT
"""Fuzz target (atheris, libFuzzer's engine for Python): the Python dataset reader, openmmmrl.data.Dataset, on
arbitrary bytes as a dataset file: open, keys, counts, up to 64 records, the skipped inputs and the frame
iterator.  A ValueError naming the file is the expected outcome of a damaged file; any other exception, a crash
or a hang is a finding.  scripts/fuzz.sh runs it as the target "dataset-python"; libFuzzer's flags work:

    .venv/bin/python tests/fuzz/fuzz_dataset_reader.py CORPUS_DIR tests/fuzz/corpus/dataset -max_total_time=60
"""
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from openmmmrl.data import Dataset

PATH = os.path.join("/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir(),
                    f"mrl-fuzz-{os.getpid()}.h5")


def read_everything(path):
    with Dataset(path) as data:
        data.keys()
        data.frame_counts()
        data.atom_counts()
        for i in range(min(len(data), 64)):
            data.record(i)
        data.skipped()
        for _ in zip(range(64), data.iter_frames()):
            pass


def test_one_input(data: bytes):
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        read_everything(PATH)
    except ValueError as error:
        if os.environ.get("MRL_FUZZ_VERBOSE"):
            print(f"  rejected: {error}", file=sys.stderr)
    finally:
        os.remove(PATH)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
