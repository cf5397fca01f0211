# SPDX-License-Identifier: MIT
"""Adds GFN2-xTB labels to a dataset: a new dataset whose records are the input's (the chosen frames) with
a label set of GFN2-xTB total and interaction energies and forces (docs/dataset.md, "Label sets").

    python -m openmmmrl.relabel data.h5 --output data.gfn2.h5                 # every frame
    python -m openmmmrl.relabel data.h5 --output xtb.h5 --frames-per-record 5 --max-records 1000 --processes 2

Crash-safe and resumable like ``mrl-envgen build``: the output is written through the dataset writer's
journal, so a run killed at any moment (even ``kill -9``) and started again with the same command loses
and duplicates nothing; records already in the output are not computed again.  Each worker process
runs one calculation at a time with one thread (``OMP_NUM_THREADS=1``).  Frames that GFN2-xTB cannot label
(e.g. no SCF convergence) are left out of their record and listed as skipped (key ``KEY#frame<f>``) with
the reason; a record none of whose frames could be labelled is skipped as a whole.  Periodic frames are
skipped (the environments of ``mrl-envgen build`` are not periodic).  Units: nm, kJ/mol, kJ/mol/nm.
"""
import argparse
import json
import multiprocessing
import os
import sys
from typing import List, Optional

import numpy as np

from .._version import __version__
from ..data import Dataset, DatasetWriter, Record

LABEL_FIELDS = ("total_energy", "interaction_energy", "total_forces", "interaction_forces")


def choose_frames(num_frames: int, per_record: Optional[int]) -> List[int]:
    """Evenly spaced frame numbers of a record (all frames when ``per_record`` is None or large enough)."""
    if per_record is None or per_record >= num_frames:
        return list(range(num_frames))
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, per_record)})


def label_record(task):
    """Worker: labels the chosen frames of one record.  Returns (key, frames, labels, failures)."""
    from .xtb import LabelError, label_frame
    key, numbers, charges, molecules, positions, boxes, frames, method = task
    labelled, labels, failures = [], [], []
    for f in frames:
        if np.any(boxes[f] != 0):
            failures.append((f, "periodic frames are not labelled (GFN2-xTB of an isolated cluster)"))
            continue
        try:
            labels.append(label_frame(numbers, charges, molecules, positions[f].astype(np.float64), method))
            labelled.append(f)
        except LabelError as e:
            failures.append((f, str(e)))
    return key, labelled, labels, failures


def relabelled_record(record: Record, frames: List[int], labels, label_set: str) -> Record:
    """The record restricted to `frames`, with the label set."""
    out = record.normalized()
    for name in ("time", "box", "total_energy", "interaction_energy", "positions", "total_forces",
                 "interaction_forces", "direction_3dmrl"):
        setattr(out, name, getattr(out, name)[frames])
    out.labels = {label_set: {name: np.stack([np.asarray(getattr(l, name)) for l in labels])
                              for name in LABEL_FIELDS}}
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m openmmmrl.relabel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="the dataset to label (written by mrl-envgen or DatasetReporter)")
    parser.add_argument("--output", required=True, help="the labelled dataset to write or resume")
    parser.add_argument("--label-set", default="gfn2", help="the label set's name (default: gfn2)")
    parser.add_argument("--method", default="GFN2-xTB", choices=["GFN2-xTB", "GFN1-xTB"],
                        help="the tblite method (default: GFN2-xTB)")
    parser.add_argument("--frames-per-record", type=int, default=None,
                        help="label this many evenly spaced frames of each record (default: all)")
    parser.add_argument("--max-records", type=int, default=None,
                        help="label the first N records of the input (default: all)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output instead of resuming it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def check_arguments(args):
    if args.frames_per_record is not None and args.frames_per_record < 1:
        raise SystemExit("--frames-per-record must be at least 1")
    if args.max_records is not None and args.max_records < 1:
        raise SystemExit("--max-records must be at least 1")
    if args.processes < 1:
        raise SystemExit("--processes must be at least 1")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise SystemExit("--output must be a new file, not the input (the input is never modified)")


def output_attributes(args, source: Dataset, method_text: str) -> dict:
    options = {"input": os.path.basename(args.input), "input_options": json.loads(source.attributes.get(
        "options_json", "{}") or "{}"), "label_set": args.label_set, "method": args.method,
        "frames_per_record": args.frames_per_record, "max_records": args.max_records}
    return {"tool": f"openmmmrl.relabel {__version__}", "command_line": " ".join(sys.argv),
            "options_json": options, "force_field": source.attributes.get("force_field", ""),
            "temperature_K": source.attributes.get("temperature_K", float("nan")),
            "timestep_ps": source.attributes.get("timestep_ps", float("nan")),
            "seed": source.attributes.get("seed", -1),
            "interaction_forces": source.attributes.get("interaction_forces", "none"),
            "label_sets": {args.label_set: method_text}}


def tasks(source: Dataset, writer: DatasetWriter, args):
    """The records still to label, as worker tasks (the frames' arrays, no h5py objects)."""
    count = len(source) if args.max_records is None else min(len(source), args.max_records)
    for r in range(count):
        key = source.keys()[r]
        if writer.contains(key):
            continue
        record = source.record(r).normalized()
        yield (key, record.atomic_numbers, record.formal_charges, record.molecule_index, record.positions,
               record.box, choose_frames(record.num_frames, args.frames_per_record), args.method)


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_arguments(args)
    os.environ["OMP_NUM_THREADS"] = "1"  # before tblite loads, here and in the workers (they inherit it)
    from .xtb import method_description
    from tqdm import tqdm
    summary = {"output": args.output, "records_written": 0, "records_skipped": 0, "frames_labelled": 0,
               "frames_skipped": 0}
    with Dataset(args.input) as source, \
            DatasetWriter(args.output, output_attributes(args, source, method_description(args.method)),
                          overwrite=args.overwrite) as writer:
        todo = list(tasks(source, writer, args))
        summary["records_already_present"] = (len(source) if args.max_records is None
                                              else min(len(source), args.max_records)) - len(todo)
        progress = tqdm(total=sum(len(t[6]) for t in todo), unit="frame", disable=args.quiet, file=sys.stderr,
                        desc="relabel")
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.processes) if args.processes > 1 else _InProcess() as pool:
            for key, frames, labels, failures in pool.imap(label_record, todo):
                for f, reason in failures:
                    if not writer.contains(f"{key}#frame{f}"):  # a rerun after a kill may meet it again
                        writer.add_skipped(f"{key}#frame{f}", key, reason)
                if frames:
                    writer.add_record(relabelled_record(source.record(key), frames, labels, args.label_set))
                    summary["records_written"] += 1
                else:
                    writer.add_skipped(key, key, "no frame could be labelled: " + "; ".join(r for _, r in failures))
                    summary["records_skipped"] += 1
                summary["frames_labelled"] += len(frames)
                summary["frames_skipped"] += len(failures)
                progress.update(len(frames) + len(failures))
        progress.close()
    print(json.dumps(summary, indent=2))
    return 0


class _InProcess:
    """A one-process stand-in for a Pool: the same imap, in this process (no spawning for --processes 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(function, items):
        return map(function, items)


if __name__ == "__main__":
    sys.exit(main())
