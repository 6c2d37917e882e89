"""RecBole half of ``bench_sequential_speed.py``: time RecBole 1.2.1 training epochs.

Run with RecBole's own interpreter (never the project's venv; see /work/shared/ENVIRONMENT.md)::

    /work/recbole-venv/bin/python benchmarks/recbole_epoch_driver.py DATA_PATH DATASET \
        --model SASRec --max-len 50 --epochs 2 --threads 1

``DATA_PATH/DATASET/DATASET.inter`` is an atomic file (``user_id:token item_id:token
timestamp:float``). Prints one JSON line per epoch: ``{"epoch", "seconds", "cpu_seconds",
"samples", "batches", "batch_size", "threads", "loss"}`` (a sample is one prefix of a user's
sequence, with one next-item target). Only RecBole's own epoch loop is timed
(``Trainer._train_epoch``, what ``Trainer.fit`` logs as "training [time: ...]"), no evaluation.
With ``--max-batches N`` it runs the first N batches of the epoch (all batches but the last hold
``train_batch_size`` samples padded to ``max_len``, so each costs the same) and scales their time
by samples to a whole epoch; ``timed_seconds`` and ``timed_batches`` say what was measured.
This file must not import movierec.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import tempfile
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


class FirstBatches:
    """The first ``n`` batches of a RecBole training DataLoader (what ``_train_epoch`` reads:
    iteration, ``len`` and ``shuffle``)."""

    def __init__(self, data, n: int) -> None:
        self.data, self.n, self.shuffle = data, min(n, len(data)), data.shuffle

    def __iter__(self):
        return itertools.islice(iter(self.data), self.n)

    def __len__(self) -> int:
        return self.n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_path")
    ap.add_argument("dataset")
    ap.add_argument("--model", choices=["SASRec", "GRU4Rec"], required=True)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--max-batches", type=int, default=0,
                    help="Time only the first N batches of each epoch and scale the time to "
                    "the whole epoch by samples (0: whole epochs).")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    sizes = ({"hidden_size": args.hidden, "n_layers": 2, "n_heads": 2,
              "inner_size": 4 * args.hidden} if args.model == "SASRec"
             else {"embedding_size": args.hidden, "hidden_size": args.hidden, "num_layers": 1})
    with tempfile.TemporaryDirectory(prefix="recbole-ckpt-") as ckpt:
        config = Config(model=args.model, dataset=args.dataset, config_dict={
            "data_path": args.data_path, "checkpoint_dir": ckpt,
            "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "MAX_ITEM_LIST_LENGTH": args.max_len, "loss_type": "CE",
            "train_neg_sample_args": None, "epochs": args.epochs,
            # the last two items of each user are RecBole's valid/test (not trained on)
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                          "group_by": "user"},
            "use_gpu": False, "gpu_id": "", "show_progress": False, "state": "WARNING",
            "seed": 0, "reproducibility": True, "worker": 0, **sizes,
        })
        init_seed(config["seed"], config["reproducibility"])
        logging.getLogger().setLevel(logging.WARNING)
        dataset = create_dataset(config)
        train_data, _, _ = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        samples, batch_size = len(train_data._dataset), config["train_batch_size"]
        batches = FirstBatches(train_data, args.max_batches or len(train_data))
        timed = min(samples, len(batches) * batch_size)  # samples in the batches timed
        for epoch in range(args.epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = trainer._train_epoch(batches, epoch)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            scale = samples / timed
            print(json.dumps({"epoch": epoch + 1, "seconds": round(seconds * scale, 3),
                              "cpu_seconds": round(cpu * scale, 3),
                              "timed_batches": len(batches), "timed_seconds": round(seconds, 3),
                              "samples": samples, "batches": len(train_data),
                              "batch_size": batch_size,
                              "threads": torch.get_num_threads(),
                              "loss": round(float(loss), 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
